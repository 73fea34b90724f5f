/*
 * The core of the shim: the process's start, fork and exec, its end.  The
 * hooks call in here; nothing here exports a libc name.
 */
#ifndef PFS_CORE_H
#define PFS_CORE_H

#include <sys/types.h>

int pfs_core_init(int argc, char **argv, char **envp);
void pfs_core_child_after_fork(int how);
void pfs_core_before_exec(const char *path);
void pfs_core_exec_failed(int err);
void pfs_core_end(int reason, int status);
void pfs_core_fini(void);
void pfs_core_note_fork(pid_t child, int how);
/* A new thread of the program, before its code runs: its stack is tracked (the shim made it; not one the program gave). */
void pfs_core_thread_started(void);

#endif
