# A fork pool: each worker builds a large list in a function of this file; the
# children's stacks carry that line too (their logs stand alone).
import multiprocessing


def work(n):
    data = list(range(n))  # WORK_LINE
    return sum(data)


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    with multiprocessing.Pool(2) as pool:
        print(pool.map(work, [200000, 300000, 400000]))
