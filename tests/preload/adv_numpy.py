# For the advisor on CPython with numpy (issue 18): arrays as a numerical program makes them.
# numpy's own C code (_multiarray_umath) calls the allocator; the interpreter's frames are a
# runtime's, never a rule's name.
import mmap

import numpy as np


def load_ones():
    return np.ones(8 << 20)  # 64 MiB, filled at once (numpy asks for huge pages itself)


def load_grid():
    g = np.zeros((4096, 2048))  # 64 MiB calloc, written right after
    g[:, :] = 2.0
    return g


def sparse_lookup():
    m = mmap.mmap(-1, 128 << 20)  # 128 MiB mapped, one page in 16 written: sparse
    t = np.frombuffer(m, dtype=np.float64)
    t[::8192] = 1.0
    return float(t[::8192].sum())


a, g = load_ones(), load_grid()
print(float(a.sum() + g.sum()) + sparse_lookup())
