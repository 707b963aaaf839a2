# Issue 13: memory across forks. Each process stays under the per-process address-space
# limit, but together they hold far more than the sandbox's memory cap.
import os, time
for _ in range(6):
    if os.fork() == 0:
        block = bytearray(300 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(600)
        os._exit(0)
time.sleep(600)
