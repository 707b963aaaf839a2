"""How fast does EpisodeSampler make 5-way 1-shot 15-query episodes from cached data?

Target: >= 200 episodes/s on 2 CPU cores.

    python bench/episode_speed.py [--repeats 7] [--seconds 1.0] [--threads 2]

Measures, on a random dense tensor shaped like Glyphs (1,000 classes x 20 x 1 x 28 x 28,
so it depends on nobody else's code): single episodes (``sample()``) and meta-batches of
32 (``sample_batch(32)``, counted in episodes). Also measures on the cached Glyphs set if
``metalearn_lite.data.glyphs`` imports and its cache exists, and on the real small
Omniglot zips in ../shared if present. Prints the median of the repeats and the ratio to
the target.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from metalearn_lite.data import EpisodeSampler

TARGET_EPISODES_PER_S = 200.0
NUM_WAYS, NUM_SHOTS, NUM_QUERIES = 5, 1, 15


def rate(sampler: EpisodeSampler, seconds: float, num_tasks: int | None) -> float:
    """Episodes per second over about ``seconds`` of sampling."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        if num_tasks is None:
            sampler.sample()
            count += 1
        else:
            sampler.sample_batch(num_tasks)
            count += num_tasks
    return count / elapsed


def measure(name: str, data, repeats: int, seconds: float) -> None:
    sampler = EpisodeSampler(data, NUM_WAYS, NUM_SHOTS, NUM_QUERIES, seed=0)
    shape = list(sampler.dense.shape) if sampler.dense is not None else f"{sampler.num_classes} classes"
    for label, num_tasks in (("sample()", None), ("sample_batch(32)", 32)):
        rate(sampler, 0.1, num_tasks)  # warm-up
        rates = [rate(sampler, seconds, num_tasks) for _ in range(repeats)]
        median = statistics.median(rates)
        print(f"{name:<28} {str(shape):<24} {label:<17} {median:>9.0f} episodes/s "
              f"(min {min(rates):.0f}, max {max(rates):.0f})  {median / TARGET_EPISODES_PER_S:>6.1f}x target")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of one repeat")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"EpisodeSampler, {NUM_WAYS}-way {NUM_SHOTS}-shot {NUM_QUERIES}-query; target "
          f">= {TARGET_EPISODES_PER_S:.0f} episodes/s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} x {args.seconds:g} s")
    data = torch.rand(1000, 20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    measure("random, Glyphs-shaped", data, args.repeats, args.seconds)

    try:
        from metalearn_lite.data.glyphs import Glyphs

        glyphs = Glyphs(background=True, generate=False)
    except Exception as exc:  # absent cache or module: report and go on
        print(f"{'Glyphs (cached)':<28} skipped: {type(exc).__name__}: {str(exc)[:100]}")
    else:
        measure("Glyphs (cached)", glyphs, args.repeats, args.seconds)

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
    small = shared / "images_background_small1.zip"
    if small.exists():
        from metalearn_lite.data import Omniglot

        measure("Omniglot small1 (cached)", Omniglot(path=small, progress=False), args.repeats, args.seconds)
    else:
        print(f"{'Omniglot small1':<28} skipped: {small} not present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
