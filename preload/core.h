/*
 * The core of the shim: the process's start, fork and exec, its end.  The
 * hooks call in here; nothing here exports a libc name.
 */
#ifndef PFS_CORE_H
#define PFS_CORE_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* The shim's start, once: by its constructor, or earlier (argv NULL) by the program's first hook call. */
int pfs_core_init(int argc, char **argv, char **envp);
/*
 * Set once the start was tried; before that, pfs_core_start_early starts
 * the shim from an allocating hook called from `caller` (core.c).
 */
extern int pfs_core_start_tried;
int pfs_core_start_early(uintptr_t caller);
void pfs_core_child_after_fork(int how);
void pfs_core_before_exec(const char *path);
void pfs_core_exec_failed(int err);
void pfs_core_end(int reason, int status);
void pfs_core_fini(void);
void pfs_core_note_fork(pid_t child, int how);
/*
 * After the program's sigaction(sig, act, old) succeeded: a signal whose
 * default the shim holds (its last pass before a fatal signal) reads as the
 * default in *old, and a disposition the program sets takes it back.
 */
void pfs_core_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* A fatal signal that arrived inside the shim's work: its last pass, then the signal again (hook.h). */
extern int pfs_fatal_pending;
void pfs_core_fatal_now(void);
/*
 * 1 in the process the shim set up, 0 in a child made without the hooks
 * (a raw clone, clone3 or fork system call): the word lies on a page
 * marked MADV_WIPEONFORK, which the kernel zeroes in every child; the
 * shim's own fork paths set it again.  One load on the hook path.
 */
extern volatile const int *pfs_core_here;
/*
 * Such a child's first call into a hook: it is set up as a forked child
 * (its own log), or left untraced.  Returns whether it is traced.
 */
int pfs_core_unseen_child(void);
/*
 * The program is about to register memory with a userfaultfd of its own
 * (ioctl UFFDIO_REGISTER, `arg` its struct uffdio_register): the tracker
 * steps back from that memory.
 */
void pfs_core_uffd_register(int fd, const void *arg);
/* A new thread of the program, before its code runs: its stack is tracked (the shim made it; not one the program gave). */
void pfs_core_thread_started(void);

#endif
