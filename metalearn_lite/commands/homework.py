"""``metalearn homework ACTION``: the instructor's side of the homework.

``generate`` writes ``exercises/`` (student versions) from ``solutions/`` (or from a private
folder's new assignments); ``private OUT`` writes the private assignment folder the grader
reads (reference code, hidden tests, points, a term seed: ``grading/private.py``);
``gradescope NAME`` an autograder zip (``grading/gradescope.py``); ``nbgrader NAME`` an
nbgrader source notebook (``grading/nbgrader_export.py``); ``export GRADES_DIR`` a Canvas
or plain gradebook CSV through a roster (``grading/lms.py``).
"""
from __future__ import annotations

import sys

__all__ = ["register", "run_generate", "run_private", "run_gradescope", "run_export", "run_nbgrader"]


def register(subparsers) -> None:
    parser = subparsers.add_parser("homework", help="homework for instructors: exercises, private folder, Gradescope, nbgrader, LMS export")
    sub = parser.add_subparsers(dest="homework_command", metavar="ACTION")
    gen = sub.add_parser("generate", help="write exercises/ (student versions) from solutions/")
    gen.add_argument("--solutions", default="solutions",
                     help="solution notebooks hw_<name>.ipynb (default: solutions/), or an "
                     "instructor's assignment folder (<name>/solution.ipynb -> OUT/hw_<name>.ipynb)")
    gen.add_argument("--out", default="exercises", help="student notebooks (default: exercises/)")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if exercises/ is out of sync with solutions/")
    gen.set_defaults(func=run_generate)
    priv = sub.add_parser("private", help="write the private assignment folder the grader reads "
                          "(reference code, hidden tests, points, term seed); keep it off the public repo")
    priv.add_argument("out", metavar="OUT_DIR", help="folder to write (one sub-folder per assignment)")
    priv.add_argument("--seed", type=int, default=None, metavar="TERM_SEED",
                      help="term seed the hidden inputs are drawn from (default: a fresh random one; "
                      "use a new one every term)")
    priv.add_argument("--solutions", default="solutions",
                      help="solution notebooks and hidden_tests/ (default: solutions/)")
    priv.add_argument("--assignment", action="append", default=None, metavar="NAME",
                      help="only this assignment (repeatable; default: all)")
    priv.set_defaults(func=run_private)
    gs = sub.add_parser("gradescope", help="write a Gradescope autograder zip for one assignment")
    gs.add_argument("name", metavar="NAME", help="assignment (a folder of the private assignment folder)")
    gs.add_argument("--tests", default=None, metavar="DIR",
                    help="the private assignment folder (default: $METALEARN_ASSIGNMENTS)")
    gs.add_argument("--out", default=None, help="zip to write (default: NAME_autograder.zip)")
    gs.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission")
    gs.add_argument("--memory-mb", type=int, default=2048, help="memory limit per submission in MiB")
    gs.set_defaults(func=run_gradescope)
    nbg = sub.add_parser("nbgrader", help="write an nbgrader source notebook (graded test cells, "
                         "hidden tests) for one assignment into an nbgrader course folder")
    nbg.add_argument("name", metavar="NAME", help="assignment (a folder of the private assignment folder)")
    nbg.add_argument("--tests", default=None, metavar="DIR",
                     help="the private assignment folder (default: $METALEARN_ASSIGNMENTS)")
    nbg.add_argument("--course", required=True, metavar="COURSE_DIR",
                     help="nbgrader course folder: writes COURSE_DIR/source/NAME/hw_NAME.ipynb")
    nbg.set_defaults(func=run_nbgrader)
    ex = sub.add_parser("export", help="grades.csv -> an LMS gradebook CSV (Canvas import, or plain)")
    ex.add_argument("grades", metavar="GRADES_DIR", help="the --out folder of `metalearn grade`")
    ex.add_argument("--roster", required=True,
                    help="CSV with submission_id,lms_id[,name,sis_user_id,sis_login_id,section]")
    ex.add_argument("--format", choices=("canvas", "plain"), default="canvas", dest="fmt")
    ex.add_argument("--column", default=None, help="the assignment's column in the LMS (default: GRADES_DIR's name)")
    ex.add_argument("--out", default=None, help="CSV to write (default: GRADES_DIR/<format>.csv)")
    ex.set_defaults(func=run_export)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_generate(args) -> int:
    from ..grading.authoring import AuthoringError, check_exercises, generate_exercises

    try:
        if args.check:
            problems = check_exercises(args.solutions, args.out)
            for problem in problems:
                print(f"out of sync: {problem}", file=sys.stderr)
            if problems:
                print("run: metalearn homework generate", file=sys.stderr)
                return 1
            print(f"{args.out} is in sync with {args.solutions}")
            return 0
        written = generate_exercises(args.solutions, args.out)
    except (AuthoringError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} file(s) updated" if written else "already up to date")
    return 0


def run_private(args) -> int:
    from ..grading.authoring import AuthoringError
    from ..grading.private import new_term_seed, write_private_folder

    seed = args.seed if args.seed is not None else new_term_seed()
    try:
        written = write_private_folder(args.out, args.solutions, seed=seed, names=args.assignment)
    except (AuthoringError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = sorted({p.parent.name for p in written})
    print(f"wrote {len(written)} file(s) for {', '.join(names)} to {args.out} (term seed {seed})")
    print(f"grade with: metalearn grade SUBMISSIONS --assignment NAME --tests {args.out} --out GRADES")
    return 0


def run_gradescope(args) -> int:
    from ..grading.gradescope import build_autograder_zip
    from ..grading.sandbox import Limits

    if args.timeout <= 0 or args.memory_mb < 256:
        print("error: --timeout must be > 0 and --memory-mb >= 256", file=sys.stderr)
        return 2
    out = args.out or f"{args.name}_autograder.zip"
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb, call_timeout=min(30.0, args.timeout))
    try:
        path = build_autograder_zip(args.name, args.tests, out, limits)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: upload it as the assignment's autograder (Gradescope: Configure Autograder, "
          "zip file upload); it holds the reference code and hidden tests, so keep it private")
    return 0


def run_export(args) -> int:
    from ..grading.lms import LmsExportError, export_grades

    try:
        report = export_grades(args.grades, args.roster, args.fmt, args.column, args.out)
    except LmsExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {report.path}: {report.exported} graded student(s)")
    if report.missing:
        print(f"{len(report.missing)} student(s) on the roster have no grade (empty cell): "
              + ", ".join(report.missing))
    return 0


def run_nbgrader(args) -> int:
    from ..grading.nbgrader_export import write_nbgrader_source

    try:
        path = write_nbgrader_source(args.name, args.tests, args.course)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (it holds the hidden tests: keep the course folder private)")
    print(f"then, in {args.course}: nbgrader generate_assignment {args.name}; collect submissions into "
          f"submitted/<student>/{args.name}/hw_{args.name}.ipynb; nbgrader autograde {args.name}")
    return 0
