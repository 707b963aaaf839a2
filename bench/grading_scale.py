"""What grading a class costs on one machine: N honest submissions, ``--jobs`` at a time.

    python bench/grading_scale.py --students 200 --jobs 2 --assignment np

Copies the assignment's solution notebook N times into a temporary submissions folder,
writes a private assignment folder (``metalearn homework private``), grades the folder with
``grade_folder`` (the sandbox, as ``metalearn grade`` runs it) and prints: wall time,
seconds per submission, the grader's peak resident memory, the peak of the whole process
tree (grader + sandboxes, summed over /proc every 0.2 s), and the projection to 1,000
students on this machine. Every submission must score full marks, or the script exits 1.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (Linux /proc), in MiB."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        parents[int(entry)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total = 0
    for pid in rss:
        p, seen = pid, 0
        while p and p != root and seen < 64:
            p, seen = parents.get(p, 0), seen + 1
        if p == root:
            total += rss[pid]
    return total / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignment", default="np")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from metalearn_lite.grading.grader import grade_folder
    from metalearn_lite.grading.private import write_private_folder
    from metalearn_lite.grading.sandbox import Limits

    with tempfile.TemporaryDirectory(prefix="grading_scale_") as tmp:
        tmp = Path(tmp)
        write_private_folder(tmp / "private", REPO / "solutions", seed=1, names=[args.assignment])
        subs = tmp / "subs"
        subs.mkdir()
        for i in range(args.students):
            shutil.copy(REPO / "solutions" / f"hw_{args.assignment}.ipynb", subs / f"student{i:04d}.ipynb")
        peak, done = [0.0], threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        rows = grade_folder(subs, args.assignment, tmp / "out", jobs=args.jobs,
                            limits=Limits(timeout=args.timeout, call_timeout=min(30.0, args.timeout)),
                            tests_dir=tmp / "private")
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    full = sum(r["status"] == "ok" and r["points"] == r["max_points"] for r in rows)
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per = wall / max(1, len(rows))
    print(f"machine: {os.cpu_count()} cores; assignment {args.assignment}; {len(rows)} submissions, "
          f"--jobs {args.jobs}")
    print(f"full marks: {full} / {len(rows)}")
    print(f"wall: {wall:.1f} s = {per:.2f} s per submission ({per * args.jobs:.2f} s per submission per job)")
    print(f"peak RSS: grader {parent_mb:.0f} MiB, grader + sandboxes {peak[0]:.0f} MiB "
          f"(at most {args.jobs} sandboxes at once)")
    print(f"1,000 students at this rate: {1000 * per / 60:.1f} min on this machine")
    return 0 if full == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
