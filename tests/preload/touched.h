/* For target programs: an anonymous mapping with each of its pages written once. */
#ifndef TESTS_TOUCHED_H
#define TESTS_TOUCHED_H

#include <stddef.h>
#include <sys/mman.h>

/* A macro, not a function: the caller stays the allocation's site (frames[0], inlined frames too). */
#define MAP_TOUCHED(pages)                                                                            \
	({                                                                                            \
		size_t n_ = (pages);                                                                  \
		char *m_ = mmap(NULL, n_ * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); \
		if (m_ == MAP_FAILED)                                                                 \
			m_ = NULL;                                                                    \
		for (size_t i_ = 0; m_ && i_ < n_; i_++)                                              \
			m_[i_ * 4096] = 1;                                                            \
		m_;                                                                                   \
	})

#endif
