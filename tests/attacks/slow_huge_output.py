# Flood stdout and stderr with fake results, then try to fill the disk.
import sys
line = ('{"case": "2.1/h0", "output": {"kind": "number", "value": 0}}' * 100 + "\n")
try:
    while True:
        sys.stdout.write(line)
        sys.stderr.write(line)
except BaseException:
    pass
with open("big.bin", "wb") as handle:
    while True:
        handle.write(b"\0" * (1 << 20))
