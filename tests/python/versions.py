# One allocation with a record of its own (a 3 MiB bytearray), two calls deep:
# its stack shows grow, K.m and <module> with their lines in any CPython.
def grow():
    return bytearray(3 << 20)  # GROW_LINE


class K:
    def m(self):
        return [len(grow()) for _ in range(2)]  # METHOD_LINE


print(K().m())
