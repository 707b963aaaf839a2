# Issue 13: fill the disk. Many files (each under the per-file limit) in the scratch
# folder, /tmp and /dev/shm until something refuses; the scratch must be a size-capped
# filesystem that vanishes with the sandbox.
import os
written = 0
for folder in (".", "/tmp", "/dev/shm", "/var/tmp"):
    for i in range(2000):
        try:
            with open(os.path.join(folder, f"fill{i}.bin"), "wb") as handle:
                handle.write(b"\0" * (15 << 20))
            written += 15
        except OSError:
            break
print("wrote MiB:", written, flush=True)
