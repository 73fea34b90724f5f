# A numpy array filled right after np.empty: its pages are first touched by the
# fill, a fault storm charged to the line that allocated it (issue 22).
import numpy as np


def load_matrix():
    a = np.empty((4000, 4000))  # LOAD_LINE
    a[:] = 1.0
    return a


def main():
    a = load_matrix()  # MAIN_LINE
    print(float(a.sum()))


main()
