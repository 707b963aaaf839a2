# Plant links in the scratch folder and /tmp that point outside (the grader's clean-up
# must remove links, never follow them), plus a FIFO that would hang a reader.
import os
for i, target in enumerate(["/", "/etc", "@@CANARY@@", "@@SUBS@@", "@@OUT@@"]):
    for folder in (".", "/tmp"):
        try:
            os.symlink(target, os.path.join(folder, f"link{i}"))
        except OSError:
            pass
try:
    os.mkfifo("pipe")
except OSError:
    pass
