# Four threads allocating at once, the GIL passed between them every 50 us:
# three run Python (lists, a generator, a method), one calls a C function
# through ctypes without the GIL.  The output is the same in every run.
import ctypes
import sys
import threading

sys.setswitchinterval(0.00005)
lib = ctypes.CDLL(sys.argv[1])
lib.churn.restype = ctypes.c_long
lib.churn.argtypes = [ctypes.c_int, ctypes.c_long]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 30


def in_c():
    return lib.churn(ROUNDS, 256 * 1024)


def make_lists():
    total = 0
    for i in range(ROUNDS):
        big = [i] * 60000  # LISTS_LINE
        total += len(big)
    return total


def chunks():
    for i in range(ROUNDS):
        yield bytearray(200000)  # GEN_LINE


def from_generator():
    return sum(len(c) for c in chunks())


class Table:
    def fill(self):
        rows = {}
        for i in range(ROUNDS * 300):
            rows[i] = str(i) * 3
        return len(rows)


results = [None] * 4
jobs = [in_c, make_lists, from_generator, Table().fill]


def run(k):
    results[k] = jobs[k]()


threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(results)
