"""Grading throughput: N submissions of one homework graded in sandboxes on J cores.

    python bench/grading_speed.py [--n 100] [--jobs 2] [--assignment protonet]
                                  [--sleepers 20] [--sleep-timeout 10]

Needs the instructor's private assignment folder (``--tests DIR`` or
``$METALEARN_ASSIGNMENTS``; without either one is written to a temporary folder from
``solutions/``).

Second part: ``--sleepers`` submissions that only sleep until their timeout
(``--sleep-timeout`` s), graded with the same ``--jobs``: the wall-clock cost against the
floor of ``sleepers x timeout / jobs``, and how many were graded a second time alone (a
sleeper uses no CPU, so fair time must not re-run it: expected 0).

Submissions are a rotation of variants (the solution, the untouched exercise, a partial
answer, a .py export of the solution), all copies distinct files. Prints submissions per
minute, the median and 90th-percentile time per submission, and peak memory of the
grader's process and of the largest child (``ru_maxrss`` of RUSAGE_SELF / RUSAGE_CHILDREN).
Each child imports torch (~3-5 s of CPU here), which dominates the cost.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metalearn_lite.grading.grader import grade_folder  # noqa: E402
from metalearn_lite.grading.sandbox import Limits  # noqa: E402


def _variants(name: str) -> list[tuple[str, bytes]]:
    solution = (REPO / "solutions" / f"hw_{name}.ipynb").read_bytes()
    exercise = (REPO / "exercises" / f"hw_{name}.ipynb").read_bytes()
    cells = ["".join(c["source"]) for c in json.loads(solution)["cells"] if c["cell_type"] == "code"]
    as_py = "\n\n# %%\n".join(cells).encode()
    partial = json.loads(exercise)
    answered = json.loads(solution)
    for i, cell in enumerate(partial["cells"]):  # answer only the first question
        if cell.get("metadata", {}).get("metalearn", {}).get("question", "").endswith(".1"):
            partial["cells"][i] = answered["cells"][i]
    return [(".ipynb", solution), (".ipynb", exercise), (".ipynb", json.dumps(partial).encode()),
            (".py", as_py)]


def _sleepers(args, tests) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        subs.mkdir()
        for i in range(args.sleepers):
            (subs / f"sleeper{i:03d}.py").write_text("import time\ntime.sleep(100_000)\n")
        start = time.perf_counter()
        rows = grade_folder(subs, args.assignment, out, jobs=args.jobs, progress=True, tests_dir=tests,
                            limits=Limits(timeout=args.sleep_timeout, call_timeout=min(30.0, args.sleep_timeout)))
        wall = time.perf_counter() - start
    floor = args.sleepers * args.sleep_timeout / args.jobs
    alone = sum(bool(r.get("graded_alone")) for r in rows)
    statuses = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    print(f"{args.sleepers} sleepers (timeout {args.sleep_timeout:g} s, {args.jobs} jobs): {wall:.1f} s "
          f"wall, floor {floor:.1f} s ({wall / floor:.2f}x); graded again alone: {alone}; "
          f"statuses: {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignment", default="protonet")
    parser.add_argument("--sleepers", type=int, default=20)
    parser.add_argument("--sleep-timeout", type=float, default=10.0)
    parser.add_argument("--tests", default=None, help="private assignment folder")
    args = parser.parse_args()
    variants = _variants(args.assignment)
    with tempfile.TemporaryDirectory() as private:
        tests = args.tests or os.environ.get("METALEARN_ASSIGNMENTS")
        if not tests:
            from metalearn_lite.grading.private import write_private_folder

            write_private_folder(private, REPO / "solutions", seed=1)
            tests = private
        _throughput(args, variants, tests)
        if args.sleepers:
            _sleepers(args, tests)


def _throughput(args, variants, tests) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        subs.mkdir()
        for i in range(args.n):
            suffix, data = variants[i % len(variants)]
            (subs / f"student{i:03d}{suffix}").write_bytes(data)
        start = time.perf_counter()
        rows = grade_folder(subs, args.assignment, out, jobs=args.jobs, progress=True,
                            limits=Limits(timeout=120), tests_dir=tests)
        wall = time.perf_counter() - start
    per = sorted(r["seconds"] for r in rows)
    honest = sorted(r["seconds"] for r in rows  # variants 0 and 3: the solution, .ipynb and .py
                    if int(r["student"].removeprefix("student")) % len(variants) in (0, 3))
    if honest:
        print(f"honest submissions ({len(honest)}): median {statistics.median(honest):.2f} s each "
              f"(sandbox start, torch import, all tests), max {honest[-1]:.2f} s")
    statuses = {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_per = (children.ru_utime + children.ru_stime) / max(1, len(rows))
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"graded {len(rows)} submissions of '{args.assignment}' with {args.jobs} jobs in {wall:.1f} s "
          f"(statuses: {statuses})")
    print(f"throughput: {len(rows) / wall * 60:.1f} submissions/minute "
          f"({wall / len(rows):.2f} s of wall time per submission with {args.jobs} jobs)")
    print(f"per submission: median {statistics.median(per):.2f} s, "
          f"p90 {per[int(0.9 * (len(per) - 1))]:.2f} s, max {per[-1]:.2f} s")
    print(f"CPU time of the children: {cpu_per:.2f} s per submission "
          f"(load-independent; ideal throughput on {args.jobs} idle cores: "
          f"{args.jobs * 60 / cpu_per:.0f} submissions/minute)")
    print(f"peak memory: grader process {self_mb:.0f} MiB, largest child {child_mb:.0f} MiB "
          f"(<= {args.jobs} children at once: <= {self_mb + args.jobs * child_mb:.0f} MiB in all)")
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"note: timings taken on a shared machine are noisy (load average at the end: {load})")


if __name__ == "__main__":
    main()
