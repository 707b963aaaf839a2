"""Where a Conv-4 MAML meta-step spends its time: torch.profiler over one meta-step of the
learn2learn-style loop (``l2l``) and the package's variants (``bench/maml_speed.py``'s).

    python bench/maml_profile.py --meta-batch 8 --steps 1 --threads 2
    python bench/maml_profile.py --variants l2l,compiled     # after a warm-up (compiles)

Prints the top operators by self CPU time per variant, and the share of time in the
convolutions (forward, backward) against everything else (batch norm, pooling, ReLU and the
elementwise/reduction ops of the backward and double backward). The finding (1 step,
meta-batch 8, 2 threads, machine shared at load 10-14): convolutions took ~38% of the l2l
loop's self CPU time; the rest was memory-bound work: mul/sum/fill_/add_/sub/neg/div ~33%,
batch norm forward and backward ~11%, max-pool ~8%, ReLU ~5%.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from maml_speed import CONV_CONFIGS, conv_setup, conv_variant_step

CONV_OPS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
            "aten::conv2d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1, choices=(1, 5))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="l2l,accumulate")
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = f"conv4-5w1s15q-{args.steps}step-2nd"
    cfg = CONV_CONFIGS[name]
    model, l2l_net, episode = conv_setup(args.meta_batch)
    for variant in args.variants.split(","):
        conv_variant_step(variant, model, l2l_net, episode, cfg["steps"], cfg["first_order"])  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            conv_variant_step(variant, model, l2l_net, episode, cfg["steps"], cfg["first_order"])
            elapsed = time.perf_counter() - start
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_OPS)
        print(f"\n== {variant}: {name}, meta-batch {args.meta_batch}, {elapsed:.2f} s (profiled); "
              f"convolutions {conv / total:.0%} of self CPU time")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=45))


if __name__ == "__main__":
    main()
