"""Time a full Glyphs generation in a fresh, temporary cache.

    python bench/glyphs_generate.py [--seed 0] [--workers N] [--target 120] [--save-sheet PNG]

Prints wall and CPU seconds, the numbers of alphabets / characters / images, the cache
file size, the time to load it back, and PASS/FAIL against the target (issue 3: <= 120 s on
2 cores). Wall time depends on what else the machine runs: the load average is printed too.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count, max 8)")
    parser.add_argument("--target", type=float, default=120.0, help="seconds allowed (default 120)")
    parser.add_argument("--save-sheet", type=Path, default=None, help="also write a contact sheet PNG here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="glyphs-bench-") as cache:
        os.environ["METALEARN_LITE_CACHE"] = cache
        import numpy as np

        from metalearn_lite.data import glyphs

        print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f} "
              f"(a shared machine makes wall time noisy)")
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        arrays = glyphs.generate_glyphs(seed=args.seed, workers=args.workers, progress=False)
        t1 = time.perf_counter()
        path = glyphs.save_glyphs(arrays, glyphs.glyphs_path(args.seed))
        t2, cpu2 = time.perf_counter(), _cpu_seconds()
        background = glyphs.Glyphs(background=True, seed=args.seed, generate=False)
        evaluation = glyphs.Glyphs(background=False, seed=args.seed, generate=False)
        t3 = time.perf_counter()

        images = arrays["images"]
        kinds = list(arrays["alphabet_kinds"])
        total = t2 - t0
        print(f"generate: {t1 - t0:.1f} s, save: {t2 - t1:.1f} s, total wall {total:.1f} s, "
              f"CPU {cpu2 - cpu0:.1f} s (all processes)")
        print(f"alphabets: {len(arrays['alphabets'])} ({kinds.count('letters')} letters, "
              f"{kinds.count('symbols')} symbols); background {len(background.alphabets)} / "
              f"evaluation {len(evaluation.alphabets)}")
        print(f"characters: {images.shape[0]} (background {len(background.characters)}, "
              f"evaluation {len(evaluation.characters)}); images: {images.shape[0] * images.shape[1]} "
              f"of {images.shape[2]}x{images.shape[3]}; per alphabet min/max "
              f"{np.bincount(arrays['alphabet_index']).min()}/{np.bincount(arrays['alphabet_index']).max()}")
        print(f"file: {path.name}, {path.stat().st_size / 1e6:.2f} MB; load both splits: {t3 - t2:.2f} s")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.save_sheet is not None:
            import matplotlib

            matplotlib.use("Agg")
            fig = glyphs.plot_contact_sheet(arrays, num_classes=18, num_drawers=12)
            fig.savefig(args.save_sheet, dpi=100, bbox_inches="tight")
            print(f"contact sheet: {args.save_sheet}")
        verdict = "PASS" if total <= args.target else "FAIL"
        print(f"{verdict}: full generation {total:.1f} s vs target {args.target:.0f} s")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
