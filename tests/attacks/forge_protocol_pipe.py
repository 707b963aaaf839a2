# Forge the trusted stages' protocol lines on every descriptor: a fake "jail_pid" of the
# grader itself (so the parent would kill its own process) and fake protections.
import json, os
line = (json.dumps({"jail_pid": os.getppid()}) + "\n" + json.dumps({"jail_pid": 1}) + "\n"
        + json.dumps({"protections": {"network_namespace": True, "note": "<img src=x>"}}) + "\n").encode()
for fd in range(0, 256):
    try:
        os.write(fd, line)
    except OSError:
        pass
