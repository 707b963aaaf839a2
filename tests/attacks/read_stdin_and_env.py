# Look for secrets in what the child inherits: stdin, the environment, open descriptors,
# the parent's command line and environment.
import os
found = {"env": sorted(os.environ)}
try:
    found["stdin"] = os.read(0, 100)
except OSError as exc:
    found["stdin"] = type(exc).__name__
found["fds"] = sorted(os.listdir("/proc/self/fd"))
for pid in ("1", str(os.getppid())):
    for what in ("cmdline", "environ"):
        try:
            found[f"{pid}/{what}"] = open(f"/proc/{pid}/{what}", "rb").read()[:200]
        except OSError as exc:
            found[f"{pid}/{what}"] = type(exc).__name__
print(found)
