"""``metalearn grade SUBMISSIONS --assignment NAME --out DIR``: grade a folder of homework.

Each submission (one ``.ipynb`` or ``.py`` per student; the id is the file stem) runs in
its own sandboxed child process (see ``metalearn_lite/grading/README.md``). Writes
``DIR/grades.csv``, ``DIR/students/<id>.json``, ``DIR/feedback/<id>.md`` and
``DIR/logs/<id>.log``, and ``DIR/rejected.csv`` (every other entry of the folder, with the
reason it was not graded). Re-running reuses complete grades of unchanged files (``--force``
regrades everything).
"""
from __future__ import annotations

import csv
import os
import sys

__all__ = ["register", "run_grade"]


def register(subparsers) -> None:
    parser = subparsers.add_parser("grade", help="grade a folder of submissions in sandboxes")
    parser.add_argument("submissions", help="folder with one .ipynb or .py per student")
    parser.add_argument("--assignment", required=True, metavar="NAME",
                        help="which homework: a folder of the private assignment folder "
                        "(maml, protonet, np, education, in_context, or one of your own)")
    parser.add_argument("--out", required=True, help="output folder for grades.csv, JSON, feedback")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="submissions graded in parallel (default: number of cores)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="wall-clock seconds per submission (default: 120)")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="memory per submission in MiB: the address space of each process and "
                        "the resident memory of the whole sandbox (default: 2048)")
    parser.add_argument("--scratch-mb", type=int, default=64,
                        help="size of the submission's scratch folder and of its /tmp in MiB, each "
                        "a tmpfs that vanishes with the sandbox (default: 64)")
    parser.add_argument("--tests", default=None, metavar="DIR",
                        help="the instructor's private assignment folder (reference code, hidden "
                        "tests, points, term seed), written by `metalearn homework private DIR`; "
                        "default: $METALEARN_ASSIGNMENTS. Required: nothing secret ships in the package")
    parser.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_grade)


def run_grade(args) -> int:
    from ..grading.grader import grade_folder
    from ..grading.sandbox import Limits

    if args.jobs < 1 or args.timeout <= 0 or args.memory_mb < 256 or args.scratch_mb < 1:
        print("error: --jobs must be >= 1, --timeout > 0, --memory-mb >= 256 and --scratch-mb >= 1",
              file=sys.stderr)
        return 2
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb, scratch_mb=args.scratch_mb,
                    call_timeout=min(30.0, args.timeout))
    try:
        rows = grade_folder(args.submissions, args.assignment, args.out, jobs=args.jobs,
                            limits=limits, force=args.force, progress=not args.no_progress,
                            tests_dir=args.tests)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no submissions"
    print(f"graded {len(rows)} submission(s): {summary}; wrote {os.path.join(args.out, 'grades.csv')}")
    rejected = _count_rejected(os.path.join(args.out, "rejected.csv"))
    if rejected:
        print(f"{rejected} other entr{'y' if rejected == 1 else 'ies'} of the folder not graded "
              f"(links, folders, hidden or other files; reasons in {os.path.join(args.out, 'rejected.csv')})")
    return 0


def _count_rejected(path: str) -> int:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return max(0, sum(1 for _ in csv.reader(handle)) - 1)
    except OSError:
        return 0
