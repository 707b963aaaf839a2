# Issue 13: a 1,500-level directory tree with unwritable folders and files in the
# scratch folder: the parent's clean-up (shutil.rmtree) used to fail on it and leave
# data in the temp folder on every run.
import os
top = os.getcwd()
for i in range(1500):
    os.mkdir("d")
    os.chdir("d")
    with open("f", "wb") as handle:
        handle.write(b"x" * 1024)
    os.chmod("f", 0)
os.chdir(top)
for root, dirs, files in os.walk("d", topdown=False):
    os.chmod(root, 0o500)
os.chmod(".", 0o500)
print("deep tree made")
