"""MAML outer-step speed: batched (vmap) vs the per-task loop, and Conv-4's fast path vs a
learn2learn-style loop, in one run.

For each configuration the two strategies alternate (loop, vmap, loop, vmap, ...) so
machine noise hits both alike; we report the median meta-steps/s of the repeats, the
ratio vmap/loop, the peak memory of each (measured in a fresh subprocess per strategy: the
peak RSS during its first meta-step above the RSS before it, one-time set-up included; on
Linux the peak is reset first), and the largest meta-gradient difference.

    python bench/maml_speed.py            # all configurations
    python bench/maml_speed.py --quick    # fewer repeats

    python bench/maml_speed.py --only conv4 --threads 2       # the Conv-4 table only

Targets: sinusoid vmap >= 3x the loop with equal meta-gradients; Conv-4: the
strategy the package picks ("auto") >= 1.0x the loop's speed with <= 1.5x its memory.

Conv-4 (5-way 1-shot 15-query, meta-batch 32, second order, 1 and 5 inner steps):
the baseline is the standard learn2learn-style loop (per task ``autograd.grad(create_graph=True)``,
``(query loss / B).backward()``, ``nn.BatchNorm2d(track_running_stats=False)``), against
variants of the package's path, alternated in one process. Per variant: median meta-steps/s,
speed ratio to the baseline, peak memory of one meta-step in a fresh process (as above), the
largest meta-gradient difference to the baseline, and the FLOP utilisation: FLOPs of one
meta-step (``torch.utils.flop_counter``) / its median time / the float32 matmul rate measured
here (2048 x 2048, same threads). Target: >= 1.5x the baseline's meta-steps/s at <= its memory.

- ``l2l``: the baseline; ``l2l-channels-last``: the same with channels-last tensors;
- ``reference``: ``meta_loss(strategy="loop")`` then one ``.backward()`` (every task's graph alive);
- ``parallel``: ``meta_backward(workers=threads)`` (``MAML.meta_step``'s default path on
  Conv-4): the tasks spread over worker threads with one intra-op thread each, the pure
  ``Conv4.functional_forward`` and lean channels-last query blocks (``maml_parallel``);
- ``accumulate``: ``meta_backward(batched=False)``, the readable reference loop with a
  backward per task and the native batch-norm kernel;
- ``grouped-K``: ``meta_backward(tasks_per_chunk=K, batched=True)``: K tasks as one grouped
  convolution per layer, per-task batch statistics, one backward per chunk;
- ``compiled``: ``meta_backward(compile=True)``: each task's meta-gradient as one
  ``torch.compile``-d ``torch.func`` function (optional: the first call compiles for minutes;
  that time is printed separately, ``compile + 1st step``). Its memory child compiles on one
  task first, hands freed pages back (``malloc_trim``) and then measures one step, so the
  figure is the step's, not the compiler's. ``MAML_SPEED_WARM_MEMORY=1`` does the same
  one-task warm-up for every variant (the fair comparison with ``compiled``).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from metalearn_lite import Episode
from metalearn_lite.algorithms import choose_strategy, meta_loss
from metalearn_lite.algorithms.maml import meta_backward
from metalearn_lite.models import MLP, Conv4
from metalearn_lite.tasks import SinusoidTasks

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository, for bench.*
from bench.protonet_speed import plain_conv4  # noqa: E402  (the same plain Conv-4 as the ProtoNet bench)

CONFIGS = {
    "sinusoid-1step-2nd": dict(kind="sinusoid", steps=1, first_order=False),
    "sinusoid-5step-2nd": dict(kind="sinusoid", steps=5, first_order=False),
    "sinusoid-1step-1st": dict(kind="sinusoid", steps=1, first_order=True),
    "sinusoid-5step-1st": dict(kind="sinusoid", steps=5, first_order=True),
    "conv4-loop-vs-vmap-1step-2nd": dict(kind="conv4", steps=1, first_order=False),
}


CONV_CONFIGS = {
    "conv4-5w1s15q-1step-2nd": dict(steps=1, first_order=False),
    "conv4-5w1s15q-5step-2nd": dict(steps=5, first_order=False),
}
CONV_VARIANTS = ("l2l", "parallel", "accumulate", "grouped-4")
OPTIONAL_VARIANTS = ("l2l-channels-last", "reference", "compiled", "grouped-1", "grouped-2")
CONV_LR = 0.4


def conv_setup(meta_batch: int = 32):
    """Conv4 (the package's), the same weights in a plain nn.Sequential with nn.BatchNorm2d
    (track_running_stats=False) for the learn2learn-style loop, and one batched episode."""
    torch.manual_seed(0)
    model = Conv4(num_classes=5)
    head = nn.Linear(model.head.in_features, model.head.out_features)
    head.load_state_dict(model.head.state_dict())
    l2l_net = nn.Sequential(*plain_conv4(model), head)  # conv, BatchNorm2d, ReLU, pool x 4, flatten, head
    b, n, k, q = meta_batch, 5, 1, 15
    sy = torch.arange(n).repeat_interleave(k).expand(b, -1).clone()
    qy = torch.arange(n).repeat_interleave(q).expand(b, -1).clone()
    episode = Episode(torch.rand(b, n * k, 1, 28, 28), sy, torch.rand(b, n * q, 1, 28, 28), qy,
                      num_ways=n, num_shots=k, num_queries=q, batched=True)
    return model, l2l_net, episode


def l2l_step(net: nn.Module, episode: Episode, steps: int, lr: float, first_order: bool,
             channels_last: bool = False) -> None:
    """The learn2learn-style loop: per task, the inner loop with autograd.grad and a backward."""
    params = dict(net.named_parameters())
    num_tasks = episode.num_tasks
    for task in episode:
        support_x, query_x = task.support_x, task.query_x
        if channels_last:
            support_x = support_x.contiguous(memory_format=torch.channels_last)
            query_x = query_x.contiguous(memory_format=torch.channels_last)
        adapted = params
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(net, adapted, (support_x,)), task.support_y)
            grads = torch.autograd.grad(loss, list(adapted.values()), create_graph=not first_order)
            adapted = {k: v - lr * g for (k, v), g in zip(adapted.items(), grads)}
        (F.cross_entropy(functional_call(net, adapted, (query_x,)), task.query_y) / num_tasks).backward()


def conv_variant_step(variant: str, model: nn.Module, l2l_net: nn.Module, episode: Episode, steps: int,
                      first_order: bool) -> list[torch.Tensor]:
    """One meta-step of ``variant``; returns the meta-gradient (in the package's parameter order)."""
    net = l2l_net if variant.startswith("l2l") else model
    for p in net.parameters():
        p.grad = None
    params = dict(net.named_parameters())
    if variant in ("l2l", "l2l-channels-last"):
        l2l_step(net, episode, steps, CONV_LR, first_order, channels_last=variant == "l2l-channels-last")
    elif variant == "reference":
        result = meta_loss(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
                           first_order=first_order, strategy="loop")
        result.loss.backward()
    elif variant == "accumulate":
        meta_backward(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
                      first_order=first_order, batched=False)
    elif variant == "parallel":
        meta_backward(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
                      first_order=first_order, workers=torch.get_num_threads())
    elif variant == "compiled":
        meta_backward(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
                      first_order=first_order, compile=True)
    elif variant.startswith("grouped-"):
        meta_backward(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
                      first_order=first_order, tasks_per_chunk=int(variant.split("-")[1]), batched=True)
    else:
        raise ValueError(f"unknown variant {variant!r}; expected one of {CONV_VARIANTS + OPTIONAL_VARIANTS}")
    return [p.grad for p in net.parameters()]


def float64_difference(variant: str, steps: int, first_order: bool, meta_batch: int = 4) -> float:
    """Largest |meta-gradient - reference| / largest |reference| in float64, on ``meta_batch`` tasks.

    The reference is ``meta_loss(strategy="loop")`` then ``.backward()`` (the readable per-task
    loop). float32 comparisons say little here: with 5 inner steps at alpha = 0.4 on random
    images, the float32 learn2learn-style loop itself is ~9% off its own float64 result.
    """
    model, l2l_net, episode = conv_setup(meta_batch)
    model, l2l_net = model.double(), l2l_net.double()
    episode = replace(episode, support_x=episode.support_x.double(), query_x=episode.query_x.double())
    params = dict(model.named_parameters())
    model.zero_grad()
    meta_loss(model, params, episode, F.cross_entropy, num_inner_steps=steps, inner_lr=CONV_LR,
              first_order=first_order, strategy="loop").loss.backward()
    reference = [p.grad.clone() for p in model.parameters()]
    grads = conv_variant_step(variant, model, l2l_net, episode, steps, first_order)
    scale = max(float(g.abs().max()) for g in reference)
    return max(float((a - b).abs().max()) for a, b in zip(grads, reference)) / scale


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """The float32 matmul rate here (GFLOP/s), best of ``repeats``: the ceiling for utilisation."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def run_conv(args) -> None:
    variants = tuple(args.variants.split(",")) if args.variants else CONV_VARIANTS
    ceiling = matmul_gflops(args.threads)
    print(f"\nConv-4, 5-way 1-shot 15-query, meta-batch {args.meta_batch}, second order; baseline: l2l "
          f"(learn2learn-style loop). matmul ceiling {ceiling:.0f} GFLOP/s ({args.threads} threads). "
          f"Variants alternate; memory: one step in a fresh process.")
    for name, cfg in CONV_CONFIGS.items():
        if args.only and args.only not in name:
            continue
        model, l2l_net, episode = conv_setup(args.meta_batch)
        steps, first_order = cfg["steps"], cfg["first_order"]
        with FlopCounterMode(display=False) as counter:
            conv_variant_step("l2l", model, l2l_net, episode, steps, first_order)
        flops = counter.get_total_flops()
        grads, first_call = {}, {}
        for v in variants:  # warm-up (compiling, for "compiled"), and the gradients to compare
            start = time.perf_counter()
            grads[v] = [g.clone() for g in conv_variant_step(v, model, l2l_net, episode, steps, first_order)]
            first_call[v] = time.perf_counter() - start
        times: dict[str, list[float]] = {v: [] for v in variants}
        repeats = args.repeats or (2 if args.quick else 5)
        for r in range(repeats):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                start = time.perf_counter()
                conv_variant_step(v, model, l2l_net, episode, steps, first_order)
                times[v].append(time.perf_counter() - start)
        mem = {v: conv_peak_memory(name, v, args) for v in variants}
        base = statistics.median(times["l2l"]) if "l2l" in times else None
        print(f"\n{name}: {flops / 1e9:.0f} GFLOP per meta-step; load average {os.getloadavg()[0]:.1f}")
        if "compiled" in first_call:
            print(f"compiled: compile + 1st step {first_call['compiled']:.0f} s (the other variants' first step: "
                  + ", ".join(f"{v} {t:.1f} s" for v, t in first_call.items() if v != "compiled") + ")")
        scale = max(float(g.abs().max()) for g in grads[variants[0]])
        print("|dg| f32: against l2l in float32 (this meta-batch); |dg| f64: against the per-task reference "
              "(meta_loss loop) in float64, 4 tasks")
        print(f"{'variant':20s} {'s/step':>7s} {'steps/s':>8s} {'vs l2l':>7s} {'MB':>7s} {'mem/l2l':>8s} "
              f"{'FLOP util':>9s} {'|dg| f32':>9s} {'|dg| f64':>9s}  all times (s)")
        for v in variants:
            t = statistics.median(times[v])
            ratio = base / t if base else float("nan")
            mem_ratio = mem[v] / mem["l2l"] if "l2l" in mem else float("nan")
            diff = max(float((a - b).abs().max()) for a, b in zip(grads[v], grads.get("l2l", grads[v]))) / scale
            diff64 = "-" if v == "compiled" else f"{float64_difference(v, steps, first_order):.1e}"
            print(f"{v:20s} {t:7.2f} {1 / t:8.3f} {ratio:6.2f}x {mem[v]:7.0f} {mem_ratio:7.2f}x "
                  f"{flops / t / 1e9 / ceiling:8.0%} {diff:9.1e} {diff64:>9s}  {' '.join(f'{x:.2f}' for x in times[v])}")


def conv_memory_child(name: str, variant: str, meta_batch: int) -> None:
    cfg = CONV_CONFIGS[name]
    model, l2l_net, episode = conv_setup(meta_batch)
    run = lambda: conv_variant_step(variant, model, l2l_net, episode, cfg["steps"], cfg["first_order"])  # noqa: E731
    if variant == "compiled" or os.environ.get("MAML_SPEED_WARM_MEMORY") == "1":
        # compile (or warm up) on one task, give the freed pages back, then measure a step
        one_task = replace(episode, support_x=episode.support_x[:1], support_y=episode.support_y[:1],
                           query_x=episode.query_x[:1], query_y=episode.query_y[:1])
        conv_variant_step(variant, model, l2l_net, one_task, cfg["steps"], cfg["first_order"])
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
    print(json.dumps(_measure_step(run)))


def conv_peak_memory(name: str, variant: str, args) -> float:
    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--meta-batch",
                          str(args.meta_batch), "--memory-child", name, variant], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]


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
    print(json.dumps(_measure_step(lambda: one_step(model, episode, loss_fn, lr, cfg["steps"], cfg["first_order"],
                                                    strategy))))


def _measure_step(run) -> dict:
    """Peak RSS of ``run()`` above the RSS before it (MB), and the process's peak (MB)."""
    if _reset_peak_rss():
        before = _status_kb("VmRSS")
        run()
        after = _status_kb("VmHWM")
    else:  # elsewhere: the process's lifetime peak (may hide a small step)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": after / 1024, "extra_mb": (after - before) / 1024}


def peak_memory(name: str, strategy: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", name, strategy], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="substring of configuration names to run")
    parser.add_argument("--meta-batch", type=int, default=32, help="tasks per Conv-4 meta-step (default 32)")
    parser.add_argument("--repeats", type=int, default=0, help="alternating Conv-4 repeats (default 5, --quick 2)")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated Conv-4 variants (default {','.join(CONV_VARIANTS)}; also "
                             f"{','.join(OPTIONAL_VARIANTS)})")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        if args.memory_child[0] in CONV_CONFIGS:
            conv_memory_child(*args.memory_child, args.meta_batch)
        else:
            memory_child(*args.memory_child)
        return
    if args.variants:
        unknown = set(args.variants.split(",")) - set(CONV_VARIANTS + OPTIONAL_VARIANTS)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}; expected {CONV_VARIANTS + OPTIONAL_VARIANTS}")
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
    run_conv(args)


if __name__ == "__main__":
    main()
