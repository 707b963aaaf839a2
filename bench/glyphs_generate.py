"""Time a full Glyphs generation in a fresh, temporary cache.

    python bench/glyphs_generate.py [--seed 0] [--workers N] [--target 120] [--save-sheet PNG]

Prints wall and CPU seconds per stage (choosing the characters runs in this process,
drawing them in worker processes), the numbers of alphabets / characters / images, the
cache file size, the time to load it back, and PASS/FAIL of the measured wall time against
the target (<= 120 s on 2 cores). Wall time depends on what else the machine runs,
so the load average is printed, and so is a CPU-bound estimate for 2 idle cores
(serial CPU + parallel CPU / 2).
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

        from metalearn_lite.data import glyph_alphabets, glyphs

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"cpus: {cpus}, load average before: {os.getloadavg()[0]:.2f} "
              f"(a shared machine makes wall time noisy; CPU seconds are steadier)")
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        names = glyph_alphabets.select_characters().names            # serial: in this process
        cpu1, t1 = _cpu_seconds(), time.perf_counter()
        arrays = glyphs.generate_glyphs(seed=args.seed, characters=names, workers=args.workers,
                                        progress=False)               # parallel over characters
        cpu2, t2 = _cpu_seconds(), time.perf_counter()
        path = glyphs.save_glyphs(arrays, glyphs.glyphs_path(args.seed))
        cpu3, t3 = _cpu_seconds(), time.perf_counter()
        background = glyphs.Glyphs(background=True, seed=args.seed, generate=False)
        evaluation = glyphs.Glyphs(background=False, seed=args.seed, generate=False)
        t4 = time.perf_counter()

        images = arrays["images"]
        kinds = list(arrays["alphabet_kinds"])
        total = t3 - t0
        workers = args.workers or glyphs._default_workers(len(names))
        print(f"select characters: {t1 - t0:.1f} s wall, {cpu1 - cpu0:.1f} s CPU; "
              f"draw ({workers} workers): {t2 - t1:.1f} s wall, {cpu2 - cpu1:.1f} s CPU; "
              f"save: {t3 - t2:.1f} s wall, {cpu3 - cpu2:.1f} s CPU")
        # What the same work costs on an idle 2-core machine: serial parts + parallel part / 2.
        estimate = (cpu1 - cpu0) + (cpu2 - cpu1) / min(2, workers) + (cpu3 - cpu2)
        print(f"alphabets: {len(arrays['alphabets'])} ({kinds.count('letters')} letters, "
              f"{kinds.count('symbols')} symbols); background {len(background.alphabets)} / "
              f"evaluation {len(evaluation.alphabets)}")
        print(f"characters: {images.shape[0]} (background {len(background.characters)}, "
              f"evaluation {len(evaluation.characters)}); images: {images.shape[0] * images.shape[1]} "
              f"of {images.shape[2]}x{images.shape[3]}; per alphabet min/max "
              f"{np.bincount(arrays['alphabet_index']).min()}/{np.bincount(arrays['alphabet_index']).max()}")
        print(f"file: {path.name}, {path.stat().st_size / 1e6:.2f} MB; load both splits: {t4 - t3:.2f} s")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.save_sheet is not None:
            import matplotlib

            matplotlib.use("Agg")
            fig = glyphs.plot_contact_sheet(arrays, num_classes=18, num_drawers=12)
            fig.savefig(args.save_sheet, dpi=100, bbox_inches="tight")
            print(f"contact sheet: {args.save_sheet}")
        print(f"CPU-bound estimate on 2 idle cores: {estimate:.1f} s "
              f"({'PASS' if estimate <= args.target else 'FAIL'} vs {args.target:.0f} s)")
        verdict = "PASS" if total <= args.target else "FAIL"
        print(f"{verdict}: full generation {total:.1f} s wall vs target {args.target:.0f} s")
        return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
