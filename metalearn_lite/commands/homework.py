"""``metalearn homework generate``: student exercises from the solution notebooks."""
from __future__ import annotations

import sys

__all__ = ["register", "run_generate"]


def register(subparsers) -> None:
    parser = subparsers.add_parser("homework", help="author homework: generate exercises/ from solutions/")
    sub = parser.add_subparsers(dest="homework_command", metavar="ACTION")
    gen = sub.add_parser("generate", help="write exercises/ (student versions) from solutions/")
    gen.add_argument("--solutions", default="solutions", help="solution notebooks (default: solutions/)")
    gen.add_argument("--out", default="exercises", help="student notebooks (default: exercises/)")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 if exercises/ is out of sync with solutions/")
    gen.set_defaults(func=run_generate)
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
