# Overwrite the grades, another student's submission and grade files; plant files.
import os
for path, data in [("@@OUT@@/grades.csv", "student,status,points\nwrite_files,ok,10\n"),
                   ("@@OUT@@/students/honest.json", "{}"),
                   ("@@OUT@@/students/write_files.json", '{"complete": true, "points": 10}'),
                   ("@@SUBS@@/honest.ipynb", "{}"),
                   ("@@SUBS@@/zz_planted.py", "print('planted')"),
                   ("@@CANARY@@", "pwned"),
                   ("/etc/metalearn_pwned", "pwned")]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(data)
    except OSError:
        pass
