"""MAML outer-step speed: batched (vmap) vs the per-task loop, in one run.

For each configuration the two strategies alternate (loop, vmap, loop, vmap, ...) so
machine noise hits both alike; we report the median meta-steps/s of the repeats, the
ratio vmap/loop, the peak memory of each (measured in a fresh subprocess per strategy: the
peak RSS during its first meta-step above the RSS before it, one-time set-up included; on
Linux the peak is reset first), and the largest meta-gradient difference.

    python bench/maml_speed.py            # all configurations
    python bench/maml_speed.py --quick    # fewer repeats

Targets (issue 2): sinusoid vmap >= 3x the loop with equal meta-gradients; Conv-4: the
strategy the package picks ("auto") >= 1.0x the loop's speed with <= 1.5x its memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from metalearn_lite import Episode
from metalearn_lite.algorithms import choose_strategy, meta_loss
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks

CONFIGS = {
    "sinusoid-1step-2nd": dict(kind="sinusoid", steps=1, first_order=False),
    "sinusoid-5step-2nd": dict(kind="sinusoid", steps=5, first_order=False),
    "sinusoid-1step-1st": dict(kind="sinusoid", steps=1, first_order=True),
    "sinusoid-5step-1st": dict(kind="sinusoid", steps=5, first_order=True),
    "conv4-5w1s15q-1step-2nd": dict(kind="conv4", steps=1, first_order=False),
}


def setup(kind: str):
    torch.manual_seed(0)
    if kind == "sinusoid":
        model = MLP(1, (40, 40), 1)
        episode = SinusoidTasks().sample(25, 10, 10, generator=0)
        return model, episode, F.mse_loss, 0.01
    model = Conv4(num_classes=5)
    b, n, k, q = 32, 5, 1, 15
    sy = torch.arange(n).repeat_interleave(k).expand(b, -1).clone()
    qy = torch.arange(n).repeat_interleave(q).expand(b, -1).clone()
    episode = Episode(torch.rand(b, n * k, 1, 28, 28), sy, torch.rand(b, n * q, 1, 28, 28), qy,
                      num_ways=n, num_shots=k, num_queries=q, batched=True)
    return model, episode, F.cross_entropy, 0.4


def one_step(model, episode, loss_fn, lr, steps, first_order, strategy):
    params = dict(model.named_parameters())
    result = meta_loss(model, params, episode, loss_fn, num_inner_steps=steps, inner_lr=lr,
                       first_order=first_order, strategy=strategy)
    return torch.autograd.grad(result.loss, list(params.values()))


def _status_kb(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in kB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return _status_kb("VmHWM") is not None
    except OSError:
        return False


def memory_child(name: str, strategy: str) -> None:
    """Peak memory of one meta-step above the memory held before it.

    ru_maxrss alone under-counts: the peak set while importing torch and building the
    episode already exceeds a small step's, so "after - before" came out 0.0 MB. On Linux the
    peak is reset to the current RSS just before the step instead. There is no warm-up step:
    after one, the allocator reuses the pages it freed and RSS no longer shows the step's
    working set (a Conv-4 step read 28 MB instead of 3.7 GB), so the figure includes the
    first call's one-time set-up (not separated from the step here)."""
    cfg = CONFIGS[name]
    model, episode, loss_fn, lr = setup(cfg["kind"])
    if _reset_peak_rss():
        before = _status_kb("VmRSS")
        one_step(model, episode, loss_fn, lr, cfg["steps"], cfg["first_order"], strategy)
        after = _status_kb("VmHWM")
    else:  # elsewhere: the process's lifetime peak (may hide a small step)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        one_step(model, episode, loss_fn, lr, cfg["steps"], cfg["first_order"], strategy)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": after / 1024, "extra_mb": (after - before) / 1024}))


def peak_memory(name: str, strategy: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", name, strategy], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="substring of configuration names to run")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    print(f"torch {torch.__version__}, {args.threads} threads")
    print(f"{'configuration':26s} {'loop/s':>8s} {'vmap/s':>8s} {'ratio':>6s} {'loop MB':>8s} {'vmap MB':>8s} "
          f"{'max|dg|':>9s}  auto")
    for name, cfg in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        model, episode, loss_fn, lr = setup(cfg["kind"])
        repeats = 3 if args.quick else 7
        per_step = 1 if cfg["kind"] == "conv4" else (5 if args.quick else 20)
        times = {"loop": [], "vmap": []}
        grads = {}
        for s in ("loop", "vmap"):  # warm-up and gradients to compare
            grads[s] = one_step(model, episode, loss_fn, lr, cfg["steps"], cfg["first_order"], s)
        for _ in range(repeats):
            for s in ("loop", "vmap"):
                start = time.perf_counter()
                for _ in range(per_step):
                    one_step(model, episode, loss_fn, lr, cfg["steps"], cfg["first_order"], s)
                times[s].append(per_step / (time.perf_counter() - start))
        diff = max(float((a - b).abs().max()) for a, b in zip(grads["loop"], grads["vmap"]))
        loop, vmap = statistics.median(times["loop"]), statistics.median(times["vmap"])
        mem = {s: peak_memory(name, s) for s in ("loop", "vmap")}
        auto, _ = choose_strategy(model, cfg["first_order"])
        print(f"{name:26s} {loop:8.2f} {vmap:8.2f} {vmap / loop:5.2f}x {mem['loop']:8.1f} {mem['vmap']:8.1f} "
              f"{diff:9.1e}  {auto} ({(vmap if auto == 'vmap' else loop) / loop:.2f}x loop, "
              f"{mem[auto] / max(mem['loop'], 0.1):.2f}x memory)")


if __name__ == "__main__":
    main()
