/*
 * pfshim log format: the on-disk records shared by the shim (writer) and the
 * analyzer (reader).  Nothing else is shared between the two.
 *
 * A log is one file per process image (a process that execs starts a new
 * file).  Layout:
 *
 *   offset 0                 struct pfs_file_header
 *   offset header_size ...   records of block 0
 *   offset k * block_size    records of block k (k >= 1)
 *
 * One file per process: an image that replaces a traced image by exec
 * goes on in the same file (version 2), from an IMAGE record: after the
 * records of the file's last block when at least 1 KiB of it is left, else
 * at the start of a block of its own.  Every record before it (in file
 * order) is the earlier images'.
 *
 * The file is cut into blocks of `block_size` bytes.  A record never
 * crosses a block boundary; each writing thread owns one block at a time
 * and fills it from the start.  A record header whose `type` is 0 (the
 * file is zero-filled when it grows) ends the used part of a block: the
 * reader skips to the next block.  That also makes every block boundary a
 * resynchronisation point after a corrupt record.
 *
 * Records are 8-byte aligned, `size` counts the header and is a multiple
 * of 8.  The writer stores the record body first and the header last (one
 * 8-byte release store), so a record whose header is visible is complete,
 * even in a file left by a process killed by SIGKILL: the file is a shared
 * mapping, every store is in the page cache the moment it is made.
 *
 * All integers are little-endian and of the width given.  Events that the
 * analyzer must order across threads (allocations, frees, stacks, modules,
 * forks) carry `seq`, a per-process counter; file order is not time order.
 *
 * Versioning: PFS_LOG_VERSION changes when a record's layout changes.  New
 * record types keep the version (a reader skips types it does not know), and
 * so do new fields appended to a record without trailing data (its `size`
 * grows; a reader reads the fields it knows).  Records followed by
 * variable data (PROC_START, MODULE, STACK, COUNTERS, EXEC, MESSAGE, PYCODE) find
 * that data right after their fixed part: their layout changes only with
 * the version.
 *
 * A log only ever grows while its process runs (blocks are appended, never
 * released), so a reader may map a live log up to the size it saw.
 */
#ifndef PFSHIM_LOG_FORMAT_H
#define PFSHIM_LOG_FORMAT_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pfshim logs are little-endian; a big-endian port needs byte swapping"
#endif

#define PFS_LOG_MAGIC "PFSHIMLG" /* 8 bytes, no NUL */
#define PFS_LOG_VERSION 2 /* 2: IMAGE, images after exec in their process's file */
#define PFS_LOG_BLOCK_SIZE 16384u
#define PFS_LOG_FILE_SUFFIX ".pfslog"
#define PFS_MAX_FRAMES 64
#define PFS_BUILD_ID_MAX 20

/* At offset 0 of every log. 64 bytes. */
struct pfs_file_header {
	char magic[8];		  /* PFS_LOG_MAGIC */
	uint32_t version;	  /* PFS_LOG_VERSION */
	uint32_t header_size;	  /* sizeof(struct pfs_file_header) */
	uint32_t block_size;	  /* PFS_LOG_BLOCK_SIZE */
	uint32_t page_size;	  /* the process's page size */
	uint64_t pid;
	uint64_t start_mono_ns;	  /* CLOCK_MONOTONIC at start; record times use it */
	uint64_t start_real_ns;	  /* CLOCK_REALTIME at the same instant */
	uint32_t flags;		  /* PFS_FILE_* */
	uint32_t lost_records;	  /* records the writer had to drop (disk full, ...); of all its images; kept up to date */
	/*
	 * Version 2: set by an image as it execs (0 otherwise): the pid whose
	 * next image goes on in this file, and that image's exec generation.
	 * The next image clears it as it takes the file over.
	 */
	uint32_t handoff_pid;
	uint32_t handoff_gen;
};

#define PFS_FILE_FORKED 0x1 /* this process began as a fork of its parent */
#define PFS_FILE_EXECED 0x2 /* this image replaced an earlier traced image */

struct pfs_rec_hdr {
	uint16_t type;	/* enum pfs_rec_type; 0 = end of the block's records */
	uint16_t flags; /* per type */
	uint32_t size;	/* whole record, header included, multiple of 8 */
};

enum pfs_rec_type {
	PFS_REC_NONE = 0,
	PFS_REC_PROC_START = 1,
	PFS_REC_MODULE = 2,
	PFS_REC_MODULE_UNLOAD = 3,
	PFS_REC_STACK = 4,
	PFS_REC_ALLOC = 5,
	PFS_REC_FREE = 6,
	PFS_REC_REMAP = 7,
	PFS_REC_MADVISE = 8,
	PFS_REC_COUNTERS = 9,
	PFS_REC_FORK = 10,
	PFS_REC_EXEC = 11,
	PFS_REC_PROC_END = 12,
	PFS_REC_MESSAGE = 13,
	PFS_REC_PYCODE = 14,	/* a Python function that Python frames of STACK records name */
	PFS_REC_IMAGE = 15,	/* the first record of an image that goes on in its process's file after exec */
	/* 32 and up: fault tracking (exact / fast modes), policies */
	PFS_REC_TOUCH = 32,
	PFS_REC_SCAN = 33,
	PFS_REC_POLICY = 34,	/* a policy rule applied to an allocation */
	PFS_REC_FAULTS = 40,	/* exact mode: a batch of fault events */
	PFS_REC_UREG = 41,	/* exact mode: a range registered with userfaultfd, or found unobservable */
	PFS_REC_CARVE = 42,	/* exact mode: heap pages carved by an allocation site */
	PFS_REC_TYPE_MAX = 64
};

/* Allocation interfaces; the names are the contract's `kind` strings. */
enum pfs_kind {
	PFS_KIND_MALLOC = 1,
	PFS_KIND_CALLOC = 2,
	PFS_KIND_REALLOC = 3,
	PFS_KIND_ALIGNED = 4, /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc */
	PFS_KIND_MMAP = 5,    /* anonymous mmap */
	PFS_KIND_MMAP_FILE = 6,
	PFS_KIND_BRK = 7,     /* brk / sbrk called by the program */
	/*
	 * Memory that is no allocation, accounted by kind (ALLOC records with
	 * PFS_ALLOC_CATEGORY): the main thread's stack, threads' stacks, the
	 * writable segments (.data/.bss) of a loaded object, anonymous memory
	 * no hook saw being mapped (another runtime, a raw system call),
	 * memory mapped before the shim started, and the shim's own.
	 */
	PFS_KIND_STACK = 8,
	PFS_KIND_THREAD_STACK = 9,
	PFS_KIND_DATA = 10,
	PFS_KIND_UNHOOKED = 11,
	PFS_KIND_PRESTART = 12,
	PFS_KIND_SELF = 13,
	/*
	 * Shared memory the program mapped: MAP_SHARED anonymous memory, SysV
	 * shmat, POSIX shm and memfd mappings.  No copy-on-write; in fast mode
	 * its first touches are pages that became mapped in this process (a
	 * read maps up to 16 pages of what another process made at once).
	 */
	PFS_KIND_SHARED = 14,
	PFS_KIND_MAX = 15
};

static inline const char *pfs_kind_name(unsigned k)
{
	static const char *const names[PFS_KIND_MAX] = {
		"unknown", "malloc",	   "calloc", "realloc",	 "aligned",   "mmap",	"mmap-file",
		"brk",	   "stack", "thread-stack", "data", "unhooked", "pre-start", "pfshim", "shared"};
	return k < PFS_KIND_MAX ? names[k] : "unknown";
}

/* Memory accounted by kind, not an allocation of the program's (see enum pfs_kind). */
static inline int pfs_kind_is_category(unsigned k)
{
	return k >= PFS_KIND_STACK && k <= PFS_KIND_SELF;
}

enum pfs_mode { PFS_MODE_OFF = 0, PFS_MODE_FAST = 1, PFS_MODE_EXACT = 2 };

static inline const char *pfs_mode_name(unsigned m)
{
	return m == PFS_MODE_FAST ? "fast" : m == PFS_MODE_EXACT ? "exact" : "off";
}

/*
 * PROC_START: first record of block 0.  Followed by `exe_len` bytes of the
 * executable's path and `cmd_len` bytes of the command line (argv strings,
 * each NUL-terminated), then zero padding to 8.
 */
struct pfs_rec_proc_start {
	struct pfs_rec_hdr h;
	uint64_t pid;
	uint64_t ppid;
	uint64_t root_pid;	/* first traced process of the run */
	uint64_t start_mono_ns;
	uint32_t mode;		/* enum pfs_mode that runs */
	uint32_t exec_gen;	/* 0 for the first image of a pid, +1 per exec */
	uint32_t page_size;
	uint32_t argc;
	uint32_t exe_len;
	uint32_t cmd_len;	/* may be cut short: flags & PFS_PROC_CMD_TRUNCATED */
};
#define PFS_PROC_CMD_TRUNCATED 0x1

/*
 * Exact mode on the kernel's fault events (perf_event_open), not the
 * userfaultfd trap: nothing waited, every fault observed as it completed.
 * Clear in exact mode: userfaultfd (and in every log of shims before it).
 */
#define PFS_PROC_FAULT_EVENTS 0x2
/*
 * Observed from outside, no shim inside: `pfshim record` wrote this log from
 * the kernel's fault events of a process the shim could not trace (a static
 * or Go executable, a vfork child before its exec).  Its memory is accounted
 * by mapping (category allocations); it has no allocation sites.
 */
#define PFS_PROC_OUTSIDE 0x4

/* How a process's faults were observed, from its mode and PROC_START flags (reports' "mechanism"). */
static inline const char *pfs_mechanism_name(unsigned mode, unsigned start_flags)
{
	return mode == PFS_MODE_FAST ? "page-map"
	       : mode != PFS_MODE_EXACT ? "none"
	       : start_flags & PFS_PROC_OUTSIDE ? "fault-events-outside"
	       : start_flags & PFS_PROC_FAULT_EVENTS ? "fault-events" : "userfaultfd";
}

/*
 * IMAGE: an image that replaced a traced image of the same process by exec
 * and goes on in its file.  The first record of the first block it writes:
 * the records from there on are its own, the blocks before it the earlier
 * images'.  What the file header says of the first image, this says of it.
 */
struct pfs_rec_image {
	struct pfs_rec_hdr h;
	uint64_t pid;
	uint64_t start_mono_ns;
	uint64_t start_real_ns;
	uint32_t flags;		/* PFS_FILE_* */
	uint32_t page_size;
};

/*
 * MODULE: a loaded object (from dl_iterate_phdr) at seq.  `base` is the load
 * bias (dlpi_addr): file virtual address + base = run-time address.  [start,
 * end) covers its PT_LOAD segments at run time.  Followed by `path_len`
 * bytes of path (no NUL needed), padding to 8.  The main program's path is
 * the resolved /proc/self/exe.
 */
struct pfs_rec_module {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t base;
	uint64_t start;
	uint64_t end;
	uint32_t id;		/* per-process module number */
	uint8_t build_id_len;	/* 0 if the object has none */
	uint8_t pad[3];
	uint8_t build_id[PFS_BUILD_ID_MAX];
	uint32_t path_len;
};

struct pfs_rec_module_unload {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint32_t id;
	uint32_t pad;
};

/*
 * STACK: a deduplicated call stack, `id` >= 1.  frames[0] is the return
 * address in the function that called the allocator (the shim's and the
 * allocator's frames are already dropped); the analyzer looks up
 * frames[i] - 1 to land inside the call instruction.  flags & PFS_STACK_TRUNCATED:
 * deeper frames were cut at PFS_MAX_FRAMES.
 */
struct pfs_rec_stack {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint32_t id;
	uint32_t nframes;
	uint64_t frames[];
};
#define PFS_STACK_TRUNCATED 0x1
#define PFS_STACK_UNKNOWN 0x2 /* no frames: the stack could not be taken (during a fork) */
/*
 * PFS_STACK_PYTHON: the stack holds Python frames (pfs_pyframe values), each
 * of the interpreter's eval frames replaced by the Python frames it was
 * running, innermost first like the return addresses around them.  Such a
 * stack may hold up to PFS_MAX_FRAMES_PYTHON entries.
 */
#define PFS_STACK_PYTHON 0x4
#define PFS_MAX_FRAMES_PYTHON 128

/*
 * A Python frame in a STACK record: bit 63 set (no return address has it),
 * bits 32-62 the PYCODE id of its function, bits 0-31 the line it was
 * running (0: unknown).
 */
#define PFS_PYFRAME_BIT (1ull << 63)

static inline uint64_t pfs_pyframe(uint32_t code, uint32_t line)
{
	return PFS_PYFRAME_BIT | (uint64_t)(code & 0x7fffffffu) << 32 | line;
}

static inline int pfs_is_pyframe(uint64_t frame)
{
	return (frame & PFS_PYFRAME_BIT) != 0;
}

static inline uint32_t pfs_pyframe_code(uint64_t frame)
{
	return (uint32_t)(frame >> 32) & 0x7fffffffu;
}

static inline uint32_t pfs_pyframe_line(uint64_t frame)
{
	return (uint32_t)frame;
}

/*
 * PYCODE: a Python function (a CPython code object), named once per process
 * for the Python frames of STACK records: `id` >= 1, its first line
 * (co_firstlineno: its `def`, 1 for a module), then `file_len` bytes of its
 * file name as the code object holds it and `name_len` bytes of its
 * qualified name ("Class.method", "outer.<locals>.inner", "<module>"),
 * UTF-8, zero padding to 8.  Written before any STACK record that names it.
 */
struct pfs_rec_pycode {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint32_t id;
	uint32_t first_line;
	uint32_t file_len;
	uint32_t name_len;
};

/*
 * ALLOC: one allocation that got its own record (large blocks, every mmap).
 * `size` is what the program asked for, `length` what it got (usable size of
 * a malloc chunk, page-rounded length of a mapping).
 */
struct pfs_rec_alloc {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;	/* CLOCK_MONOTONIC */
	uint64_t addr;
	uint64_t size;
	uint64_t length;
	uint32_t tid;
	uint32_t stack;		/* STACK id */
	uint8_t kind;		/* enum pfs_kind */
	uint8_t pad;
	uint16_t prot;		/* mmap: PROT_* */
	uint32_t mflags;	/* mmap: MAP_* */
};

/*
 * ALLOC flags.  PFS_ALLOC_INHERITED: a forked child's record of an
 * allocation its parent made and it inherited (tracked in the child too);
 * not an allocation of the child's, so not counted as one.  Its seq is the
 * parent's ALLOC's (a child's seqs go on from its parent's at the fork).
 */
#define PFS_ALLOC_INHERITED 0x1
/*
 * PFS_ALLOC_CATEGORY: memory that is no allocation (kind STACK ... SELF), a
 * range whose faults are accounted by kind; `stack` is 0 (none).
 */
#define PFS_ALLOC_CATEGORY 0x2

/* FREE: free of a block that had an ALLOC record, or munmap of [addr, addr+length). */
struct pfs_rec_free {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint64_t addr;
	uint64_t length;	/* munmap: bytes unmapped; free/realloc: 0 */
	uint32_t tid;
	uint8_t kind;		/* the interface that freed: malloc family 1, munmap 5, realloc 3 */
	uint8_t pad[3];
};

/* REMAP: mremap that succeeded. */
struct pfs_rec_remap {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint64_t old_addr;
	uint64_t old_length;
	uint64_t new_addr;
	uint64_t new_length;
	uint32_t tid;
	uint32_t stack;
};

/* MADVISE: a madvise call of the program (advice that changes residency matters later). */
struct pfs_rec_madvise {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint64_t addr;
	uint64_t length;
	int32_t advice;
	int32_t result;		/* 0 or -errno */
	uint32_t tid;
	uint32_t pad;
};

/*
 * COUNTERS: small allocations are counted, not logged one by one.  A writer
 * appends a COUNTERS record of `nslots` zeroed slots and fills a slot in place
 * when it starts counting a (stack, kind) pair; a slot whose stack is 0 is
 * unused.  Several slots may name the same pair: the analyzer sums them.
 */
struct pfs_counter_slot {
	uint32_t stack;
	uint8_t kind;
	uint8_t pad[3];
	uint64_t count;
	uint64_t bytes;		/* requested bytes */
};

struct pfs_rec_counters {
	struct pfs_rec_hdr h;
	uint32_t nslots;
	uint32_t pad;
	struct pfs_counter_slot slots[];
};

enum pfs_fork_how { PFS_FORK = 1, PFS_VFORK = 2, PFS_UFORK = 3 /* _Fork */, PFS_CLONE = 4, PFS_SPAWN = 5 };

/* FORK: written by the parent when a child process was created. */
struct pfs_rec_fork {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint64_t child_pid;
	uint32_t tid;
	uint32_t how;		/* enum pfs_fork_how */
};

/* EXEC: the image is about to be replaced; followed by the path (`path_len` bytes). */
struct pfs_rec_exec {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	int32_t result;		/* 0 when written before the exec; -errno for a failed one */
	uint32_t tid;
	uint32_t path_len;
	uint32_t pad;
};

/* PFS_END_SIGNAL: killed by a signal whose default action ends the process; `status` is the signal. */
/* PFS_END_GONE: seen to end from outside (PFS_PROC_OUTSIDE), its status unknown. */
enum pfs_end_reason {
	PFS_END_EXIT = 1,
	PFS_END_UEXIT = 2 /* _exit */,
	PFS_END_EXEC = 3,
	PFS_END_SIGNAL = 4,
	PFS_END_GONE = 5
};

/* PROC_END: the last record of an image that ended (not by SIGKILL or a crash). */
struct pfs_rec_proc_end {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	int32_t status;		/* exit status, when known */
	uint32_t reason;	/* enum pfs_end_reason */
	/*
	 * The kernel's own count of the process's faults so far (getrusage:
	 * the process's since its fork, across execs).  Appended: a shorter
	 * record (older logs) has none.
	 */
	uint64_t minflt;
	uint64_t majflt;
	/*
	 * The main thread's time on a CPU and time waiting for one, runnable
	 * (/proc/self/schedstat: since its fork, across execs; both 0 when
	 * unknown).  The analyzer reads a loaded machine from them: a program
	 * that waited for a CPU had less time to take its faults in.  Appended
	 * after majflt.
	 */
	uint64_t run_ns;
	uint64_t wait_ns;
};

/* MESSAGE: a warning the shim printed (or would have), for the report. Followed by the text. */
struct pfs_rec_message {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint32_t len;
	uint32_t level;		/* 1 warning, 2 error */
};

/*
 * TOUCH (fast mode): pages of one allocation that became present (or
 * swapped) since the previous scan, i.e. first touches after the
 * allocation returned; with PFS_TOUCH_COW, pages present at the last fork
 * that were written for the first time since (copy-on-write).  `time_ns` is the scan's time: the touches happened
 * in the scan interval before it.  Charged to (stack, kind).
 */
#define PFS_TOUCH_COW 0x1 /* h.flags: first writes after a fork to pages present at the fork */
/* h.flags: `faults` is the count even when 0 (pages a fault counted before mapped with them: a huge page's, a fault-around window's) */
#define PFS_TOUCH_FAULTS 0x2

struct pfs_rec_touch {
	struct pfs_rec_hdr h;
	uint64_t time_ns;
	uint64_t alloc_seq;	/* seq of the allocation's ALLOC record in this log */
	uint32_t stack;
	uint32_t pages;		/* base pages that became present (or were copied) */
	uint8_t kind;
	uint8_t pad[3];
	/*
	 * Faults as the kernel took them: a transparent huge page mapped by one
	 * fault is one fault for its 512 pages, the pages a read fault mapped
	 * around it (fault-around) one fault for them all.  0 without
	 * PFS_TOUCH_FAULTS in logs of shims before this field: one fault per
	 * page then.
	 */
	uint32_t faults;
};

enum pfs_scan_reason {
	PFS_SCAN_PERIODIC = 1,	/* the scanner thread, every PFSHIM_SCAN_MS */
	PFS_SCAN_FREE = 2,	/* free, munmap, realloc of a tracked allocation */
	PFS_SCAN_MADVISE = 3,	/* before and after a madvise that may drop pages */
	PFS_SCAN_REMAP = 4,
	PFS_SCAN_END = 5,	/* exit, exec */
	PFS_SCAN_FORK = 6,	/* a forked child takes its baseline */
	PFS_SCAN_SAMPLE = 7,	/* no pass: exact mode on userfaultfd, a handler's sample of the wait (flag PFS_SCAN_WAIT) */
};

/*
 * SCAN (fast mode): one pass of the scanner, even one that found nothing, for
 * rates over time; or (reason PFS_SCAN_SAMPLE) a wait sample only.
 */
struct pfs_rec_scan {
	struct pfs_rec_hdr h;
	uint64_t time_ns;	/* when the pass began */
	uint64_t duration_ns;
	uint64_t new_pages;	/* first touches found by this pass */
	uint32_t regions;	/* allocations scanned */
	uint32_t reason;	/* enum pfs_scan_reason */
	/*
	 * With flag PFS_SCAN_WAIT: the main thread's time runnable but waiting
	 * for a CPU so far (as PROC_END's wait_ns), sampled at most every 50 ms.
	 * Appended: a shorter record (an older shim's) has none.
	 */
	uint64_t wait_ns;
};
#define PFS_SCAN_WAIT 0x1 /* wait_ns holds a sample */

/*
 * FAULTS (exact mode): fault events in the order the handler resolved
 * them, all of one process.  After the fixed part come `bytes` bytes of
 * events, each a run of LEB128 varints (7 bits per byte, low first):
 *
 *   v = zigzag(page - prev_page) << 4 | flags    (page: address / page size)
 *   dt = time_ns - prev_time                     (ns)
 *   [tid]                                        if flags & PFS_FEV_TID
 *   [pc] [syscall + 1]                           if flags & PFS_FEV_SITE
 *
 * with zigzag(d) = (d << 1) ^ (d >> 63).  At the start of the record
 * prev_page is 0, prev_time is `time_ns` and the thread is `tid`; each
 * event sets them to its own.  `pc` is the faulting instruction (the
 * system call's, for a touch made by the kernel inside a system call),
 * `syscall + 1` is 0 for a fault in user code.  An event is one page
 * becoming present through an access (PFS_FEV_COW clear: a first touch)
 * or the first write after a fork to a page present at the fork (set: a
 * copy-on-write fault).  The analyzer charges each to the allocation that
 * covered the address at that time, else to the heap pages' carver (CARVE).
 * Typical storms cost 3 bytes per event.
 */
#define PFS_FEV_WRITE 0x1
#define PFS_FEV_COW 0x2
#define PFS_FEV_TID 0x4
#define PFS_FEV_SITE 0x8
/*
 * h.flags: the record's events are faults on pages that another thread's
 * fault made present at the same moment (threads touching a page at once
 * each take a fault, and the kernel counts each): faults, no page of their
 * own.
 */
#define PFS_FAULTS_AGAIN 0x1
struct pfs_rec_faults {
	struct pfs_rec_hdr h;
	uint64_t time_ns;	/* base of the first event's dt */
	uint32_t tid;		/* the thread of the first event (unless it says otherwise) */
	uint32_t count;		/* events */
	uint32_t bytes;		/* of encoded events after this fixed part */
	/*
	 * The handler's own CPU time for these events, and its time waiting for
	 * a CPU while they waited (its wake-up, preemption), ns (saturated): the
	 * time exact mode kept the faulting threads beyond what the faults cost
	 * natively, which the analyzer takes out of the timeline.  0 in logs of
	 * shims before this field (it was padding); the CPU time alone in logs
	 * of shims before 2026-12.
	 */
	uint32_t handler_ns;
};

/*
 * The fault-event codec, written once for the shim (encoder), the analyzer
 * and the tests (decoder).  `c` carries prev_page / prev_time / the thread
 * from one event to the next; start it with pfs_fev_start() from the
 * record's `time_ns` and `tid`.  The encoder sets PFS_FEV_TID itself when
 * the thread changes.
 */
#define PFS_FEV_MAX_BYTES 50u /* five varints of at most 10 bytes */

struct pfs_fev_cursor {
	uint64_t page, time;
	uint32_t tid;
};

struct pfs_fev {
	uint64_t page;	/* address / page size */
	uint64_t time_ns;
	uint64_t pc;	/* PFS_FEV_SITE: the faulting instruction */
	int64_t sys;	/* PFS_FEV_SITE: the system call that touched the page, -1 user code */
	uint32_t tid;
	unsigned flags;	/* PFS_FEV_* */
};

static inline void pfs_fev_start(struct pfs_fev_cursor *c, uint64_t time_ns, uint32_t tid)
{
	c->page = 0;
	c->time = time_ns;
	c->tid = tid;
}

static inline unsigned pfs_leb128_put(uint8_t *p, uint64_t v)
{
	unsigned n = 0;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

/* 0, or -1 when the varint runs past `end` or over 64 bits. */
static inline int pfs_leb128_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Appends `ev` at p (room for PFS_FEV_MAX_BYTES); returns the bytes written. */
static inline unsigned pfs_fev_encode(uint8_t *p, struct pfs_fev_cursor *c, const struct pfs_fev *ev)
{
	unsigned flags = ev->flags & ~(unsigned)PFS_FEV_TID, n = 0;
	if (ev->tid != c->tid)
		flags |= PFS_FEV_TID;
	int64_t d = (int64_t)(ev->page - c->page);
	uint64_t zz = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
	n += pfs_leb128_put(p + n, zz << 4 | flags);
	n += pfs_leb128_put(p + n, ev->time_ns >= c->time ? ev->time_ns - c->time : 0);
	if (flags & PFS_FEV_TID)
		n += pfs_leb128_put(p + n, ev->tid);
	if (flags & PFS_FEV_SITE) {
		n += pfs_leb128_put(p + n, ev->pc);
		n += pfs_leb128_put(p + n, (uint64_t)(ev->sys + 1));
	}
	c->page = ev->page;
	if (ev->time_ns >= c->time)
		c->time = ev->time_ns;
	c->tid = ev->tid;
	return n;
}

/* Reads one event at *p (advanced past it); 0, or -1 when it is cut short or malformed. */
static inline int pfs_fev_decode(const uint8_t **p, const uint8_t *end, struct pfs_fev_cursor *c, struct pfs_fev *ev)
{
	uint64_t v, dt, x, pc = 0, sys1 = 0;
	if (pfs_leb128_get(p, end, &v) || pfs_leb128_get(p, end, &dt))
		return -1;
	unsigned flags = (unsigned)(v & 0xf);
	uint64_t zz = v >> 4;
	c->page += (uint64_t)((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
	c->time += dt;
	if (flags & PFS_FEV_TID) {
		if (pfs_leb128_get(p, end, &x) || x > UINT32_MAX)
			return -1;
		c->tid = (uint32_t)x;
	}
	if ((flags & PFS_FEV_SITE) && (pfs_leb128_get(p, end, &pc) || pfs_leb128_get(p, end, &sys1)))
		return -1;
	*ev = (struct pfs_fev){.page = c->page, .time_ns = c->time, .pc = pc, .sys = (int64_t)sys1 - 1,
			       .tid = c->tid, .flags = flags};
	return 0;
}

/*
 * UREG (exact mode): what became of a range the shim tried to register.
 * `result` 0: registered (faults in it are events from now on); -errno:
 * the kernel refused it, the range is unobservable (file mappings, memory
 * locked by the kernel, ...).  h.flags: PFS_UREG_*.
 */
#define PFS_UREG_THP 0x1	/* transparent huge pages were possible here: registration stops them */
#define PFS_UREG_WP 0x2		/* registered for write-protect too (copy-on-write after fork is seen) */
#define PFS_UREG_HEAP 0x4	/* part of a malloc heap, charged by CARVE */
#define PFS_UREG_PRESENT 0x8	/* `present` pages were already there: touched before registration */
struct pfs_rec_ureg {
	struct pfs_rec_hdr h;
	uint64_t time_ns;
	uint64_t addr;
	uint64_t length;
	uint64_t alloc_seq;	/* the ALLOC record it belongs to, 0 for heap ranges */
	int32_t result;		/* 0 or -errno */
	uint32_t present;	/* heap ranges: pages present when registered (touched by malloc already) */
};

/*
 * CARVE (exact mode): heap pages [addr, addr + length) handed out for the
 * first time, to the block being allocated by (stack, kind); faults there
 * are charged to that site.  Pages malloc itself touched before the shim
 * could register them are written as fault events of the carving thread.
 */
struct pfs_rec_carve {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint64_t time_ns;
	uint64_t addr;
	uint64_t length;
	uint32_t stack;
	uint8_t kind;
	uint8_t pad[3];
};

/*
 * POLICY: a policy rule (PFSHIM_POLICY) applied to one allocation before it
 * returned to the program.  `actions` has bit k set for action k of
 * pfs_policy_action_name(); `result[k]` is that action's outcome, 0 or
 * -errno (0 for actions not in `actions`).  The actions act on the whole
 * pages inside the allocation.  `prefaulted_pages`: pages of those that were
 * not present before the actions and were after (populate, populate_read,
 * mlock).  Followed by `rule_len` bytes of the rule's text as written in the
 * policy, then zero padding to 8.
 */
#define PFS_POLICY_NACTIONS 8

static inline const char *pfs_policy_action_name(unsigned k)
{
	static const char *const names[PFS_POLICY_NACTIONS] = {
		"populate", "populate_read", "hugepage", "nohugepage",
		"willneed", "sequential",    "random",   "mlock"};
	return k < PFS_POLICY_NACTIONS ? names[k] : "unknown";
}

struct pfs_rec_policy {
	struct pfs_rec_hdr h;
	uint64_t alloc_seq;	/* seq of the allocation's ALLOC record */
	uint64_t time_ns;	/* when the actions began */
	uint64_t duration_ns;	/* time spent in them, counting included */
	uint64_t prefaulted_pages;
	uint32_t stack;
	uint32_t tid;
	uint16_t actions;	/* bit k: action k */
	uint8_t rule;		/* 0-based index of the rule in the policy */
	uint8_t kind;		/* enum pfs_kind */
	int16_t result[PFS_POLICY_NACTIONS]; /* 0 or -errno per action */
	uint32_t rule_len;
};

#define PFS_ALIGN8(n) (((n) + 7u) & ~(uint32_t)7u)

_Static_assert(sizeof(struct pfs_file_header) == 64, "file header layout");
_Static_assert(sizeof(struct pfs_rec_hdr) == 8, "record header layout");
_Static_assert(sizeof(struct pfs_rec_proc_start) == 64, "proc_start layout");
_Static_assert(sizeof(struct pfs_rec_module) == 72, "module layout");
_Static_assert(sizeof(struct pfs_rec_image) == 40, "image layout");
_Static_assert(sizeof(struct pfs_rec_stack) == 24, "stack layout");
_Static_assert(sizeof(struct pfs_rec_pycode) == 32, "pycode layout");
_Static_assert(sizeof(struct pfs_rec_alloc) == 64, "alloc layout");
_Static_assert(sizeof(struct pfs_rec_free) == 48, "free layout");
_Static_assert(sizeof(struct pfs_rec_remap) == 64, "remap layout");
_Static_assert(sizeof(struct pfs_rec_madvise) == 56, "madvise layout");
_Static_assert(sizeof(struct pfs_counter_slot) == 24, "counter slot layout");
_Static_assert(sizeof(struct pfs_rec_counters) == 16, "counters layout");
_Static_assert(sizeof(struct pfs_rec_fork) == 40, "fork layout");
_Static_assert(sizeof(struct pfs_rec_exec) == 40, "exec layout");
_Static_assert(sizeof(struct pfs_rec_proc_end) == 64, "proc_end layout");
_Static_assert(sizeof(struct pfs_rec_message) == 32, "message layout");
_Static_assert(sizeof(struct pfs_rec_touch) == 40, "touch layout");
_Static_assert(sizeof(struct pfs_rec_scan) == 48, "scan layout");
_Static_assert(sizeof(struct pfs_rec_faults) == 32, "faults layout");
_Static_assert(sizeof(struct pfs_rec_ureg) == 48, "ureg layout");
_Static_assert(sizeof(struct pfs_rec_carve) == 48, "carve layout");
_Static_assert(sizeof(struct pfs_rec_policy) == 72, "policy layout");

#endif
