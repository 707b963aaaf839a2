"""``metalearn homework generate|private``: student exercises and the instructor's private folder.

``generate`` writes ``exercises/`` (student versions) from ``solutions/``; ``private OUT``
writes the private assignment folder the grader reads (reference code, hidden tests,
points, a term seed: ``metalearn_lite/grading/private.py``).
"""
from __future__ import annotations

import sys

__all__ = ["register", "run_generate", "run_private"]


def register(subparsers) -> None:
    parser = subparsers.add_parser("homework", help="author homework: generate exercises/ from solutions/")
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
