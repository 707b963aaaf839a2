# Allocate memory until something gives, then keep trying.
hoard = []
while True:
    try:
        hoard.append(bytearray(b"x" * (64 << 20)))
    except MemoryError:
        hoard.clear()
