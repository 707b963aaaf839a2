# Issue 13: 40 busy processes, each in its own session, to starve the neighbour graded
# beside it (the honest submission sorts right after this file). Per-sandbox process
# cap (RLIMIT_NPROC of the run's own uid) and fair time (a starved timeout is graded
# again alone) must keep the neighbour's full marks.
import os
for _ in range(40):
    try:
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
    except OSError:
        break
while True:
    pass
