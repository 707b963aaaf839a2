# Exhaust inodes: 100,000 empty files in the scratch folder.
import os
made = 0
try:
    for i in range(100_000):
        open(f"f{i}", "w").close()
        made += 1
except OSError:
    pass
print("files:", made)
