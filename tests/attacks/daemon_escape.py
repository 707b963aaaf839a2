# A double-forked daemon in its own session that tries to outlive the run and keep
# writing into the scratch folder and /tmp.
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for i in range(600):
            try:
                with open(f"/tmp/daemon_{i}", "w") as handle:
                    handle.write("still here")
            except OSError:
                pass
            time.sleep(0.5)
        os._exit(0)
    os._exit(0)
