/*
 * The shim's messages: one line each, "pfshim: ..." on the program's
 * stderr (its copy kept by fdkeep), written whole with write(2), no stdio
 * buffer and no allocation; and the same text into the log once it is open.
 */
#ifndef PFS_MSG_H
#define PFS_MSG_H

#include <stddef.h>

/* Keeps a checked copy of the program's stderr for the shim's messages. */
void pfs_msg_fd_init(void);
/* One line on stderr, written whole with write(2); no stdio, no allocation. */
void pfs_raw_msg(const char *s);
/* "pfshim: " + formatted text + "\n"; also kept for the log's MESSAGE records. */
void pfs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Where pfs_warn sends its text besides stderr (the log, once open). */
void pfs_set_warn_sink(void (*sink)(const char *text, size_t len));

#endif
