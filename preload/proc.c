/* The traced process's state (proc.h). */
#include "proc.h"

struct pfs_process pfs_proc;
__thread int pfs_tls_busy __attribute__((tls_model("initial-exec")));
