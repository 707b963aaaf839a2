"""ProtoNet training speed on Conv-4: episodes/s of the package's path vs a plain per-episode loop.

One training episode = one forward of all support and query images through the Conv-4
embedding, prototypes, squared-Euclidean logits, cross-entropy, backward, Adam step. Each
repeat of each variant runs in a fresh process (one warm-up episode, then the timed ones), the
variants alternating, so machine noise hits them alike; we report the median episodes/s of
the repeats and the ratio to the baseline, for 60-way 5-shot 5-query (Snell et al.'s training
episodes) and 5-way 1-shot 15-query.

- ``plain``: the baseline, a plain loop over episodes with a Conv-4 built from
  ``nn.Conv2d, nn.BatchNorm2d(track_running_stats=False), nn.ReLU, nn.MaxPool2d`` and
  ``protonet_episode``;
- ``package``: ``ProtoNet(Conv4(num_classes=None))`` (``BatchStatNorm2d``, the native kernel,
  ``MaxPool2x2``);
- ``lean``: ``ProtoNet(Conv4(num_classes=None), lean=True)``: the embedding through
  ``Conv4.functional_forward(params, x, lean=True)``, channels-last lean blocks
  (``fast_ops.lean_block``), exact for a loss differentiated once, as here;
- ``package-plain-norm``: the same with the plain-tensor norm formula (the package before
  the native batch-norm kernel);
- ``pool-first``: the embedding through ``Conv4.task_batched_forward`` (max-pool before the
  ReLU: same values and gradients, a quarter of the ReLU work);
- ``channels-last``: the baseline with channels-last images and weights.

Why fresh processes: a variant's speed depends on the allocator state the others leave
behind (glibc raises its mmap threshold after large frees, and page faults cost ~2 us each on
these machines). Alternating in one process (``--shared-process``, the old mode, each setting
in its own process), ``lean`` ran 17 five-way episodes/s in some runs and 23 in others, and
23.4-24.0 in processes of its own; the plain loop runs 11.6-16.6 in processes of its own. A
training run uses one variant per process, as this default does.

    python bench/protonet_speed.py --threads 2
    python bench/protonet_speed.py --quick --settings 5w1s15q
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from metalearn_lite import Episode
from metalearn_lite.algorithms.protonet import ProtoNet, protonet_episode
from metalearn_lite.models import BatchStatNorm2d, Conv4

SETTINGS = {"60w5s5q": (60, 5, 5), "5w1s15q": (5, 1, 15)}
VARIANTS = ("plain", "package", "lean", "package-plain-norm", "pool-first", "channels-last")


def plain_conv4(reference: Conv4) -> nn.Sequential:
    """The baseline embedding, with ``reference``'s weights."""
    layers: list[nn.Module] = []
    for block in reference.features:
        conv = nn.Conv2d(block[0].in_channels, block[0].out_channels, 3, padding=1)
        norm = nn.BatchNorm2d(block[0].out_channels, track_running_stats=False)
        conv.load_state_dict(block[0].state_dict())
        norm.load_state_dict(block[1].state_dict())
        layers += [conv, norm, nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten())


def make_episode(ways: int, shots: int, queries: int, seed: int) -> Episode:
    gen = torch.Generator().manual_seed(seed)
    sy = torch.arange(ways).repeat_interleave(shots)
    qy = torch.arange(ways).repeat_interleave(queries)
    return Episode(torch.rand(ways * shots, 1, 28, 28, generator=gen), sy,
                   torch.rand(ways * queries, 1, 28, 28, generator=gen), qy, num_ways=ways, num_shots=shots,
                   num_queries=queries)


class Variant:
    """A model, its optimiser and the embedding function one training episode uses."""

    def __init__(self, name: str):
        torch.manual_seed(0)
        conv4 = Conv4(num_classes=None)
        self.name = name
        if name in ("plain", "channels-last"):
            self.net: nn.Module = plain_conv4(conv4)
            if name == "channels-last":
                self.net = self.net.to(memory_format=torch.channels_last)
                self.embed = lambda x: self.net(x.contiguous(memory_format=torch.channels_last))
            else:
                self.embed = self.net
        elif name in ("package", "package-plain-norm"):
            self.net = conv4
            for m in conv4.modules():
                if isinstance(m, BatchStatNorm2d):
                    m.native = name == "package"
            self.embed = self.net
        elif name == "lean":
            self.net = ProtoNet(conv4, lean=True)
            self.embed = None  # the package's class runs the whole episode
        elif name == "pool-first":
            self.net = conv4
            self.embed = lambda x: conv4.task_batched_forward(
                {k: v.unsqueeze(0) for k, v in conv4.named_parameters()}, x.unsqueeze(0))[0]
        else:
            raise ValueError(f"unknown variant {name!r}; expected one of {VARIANTS}")
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=1e-3)

    def train_episode(self, episode: Episode) -> float:
        self.optimiser.zero_grad(set_to_none=True)
        result = self.net(episode) if self.embed is None else protonet_episode(self.embed, episode)
        result.loss.backward()
        self.optimiser.step()
        return float(result.loss.detach())


def _episodes_per_repeat(ways: int) -> int:
    return 2 if ways >= 20 else 10


def child_rate(setting: str, variant: str) -> dict:
    """In a fresh process: one warm-up episode, then the episodes/s of one repeat."""
    ways, shots, queries = SETTINGS[setting]
    per_repeat = _episodes_per_repeat(ways)
    episodes = [make_episode(ways, shots, queries, seed) for seed in range(per_repeat)]
    model = Variant(variant)
    first_loss = model.train_episode(episodes[0])
    start = time.perf_counter()
    for episode in episodes:
        model.train_episode(episode)
    return {"rate": per_repeat / (time.perf_counter() - start), "first_loss": first_loss}


def isolated(settings: list[str], variants: list[str], threads: int, repeats: int) -> None:
    """Every repeat of every variant in a fresh process, the variants alternating (the default)."""
    print(f"torch {torch.__version__}, {threads} threads; each repeat of each variant in a fresh process, "
          f"variants alternating; baseline: plain (nn.BatchNorm2d Conv-4, a loop over episodes)")
    for setting in settings:
        ways, shots, queries = SETTINGS[setting]
        rates: dict[str, list[float]] = {v: [] for v in variants}
        first_losses: dict[str, float] = {}
        for r in range(repeats):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", setting, v],
                                     check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                rates[v].append(result["rate"])
                first_losses[v] = result["first_loss"]
        spread = max(first_losses.values()) - min(first_losses.values())
        _report(f"{setting} ({ways * (shots + queries)} images per episode), {repeats} alternating fresh "
                f"processes per variant, {_episodes_per_repeat(ways)} episodes each after one warm-up; "
                f"first-episode losses agree to {spread:.1e}", rates)


def _report(title: str, rates: dict[str, list[float]]) -> None:
    """The table: per variant the median episodes/s, its ratio to ``plain``'s, and every repeat."""
    base = statistics.median(rates["plain"])
    print(f"\n{title}")
    print(f"{'variant':20s} {'episodes/s':>10s} {'vs plain':>9s}  all (episodes/s)")
    for v, values in rates.items():
        rate = statistics.median(values)
        print(f"{v:20s} {rate:10.2f} {rate / base:8.2f}x  {' '.join(f'{x:.2f}' for x in values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {list(SETTINGS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--shared-process", action="store_true",
                        help="all variants of a setting alternate in one process (the old mode; see the docstring)")
    parser.add_argument("--child", nargs=2, metavar=("SETTING", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(args.threads)
        print(json.dumps(child_rate(*args.child)))
        return
    settings = args.settings.split(",")
    variants = args.variants.split(",")
    for name in settings:
        if name not in SETTINGS:
            parser.error(f"unknown setting {name!r}; expected one of {list(SETTINGS)}")
    for name in variants:
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
    if variants[0] != "plain":
        variants = ["plain"] + [v for v in variants if v != "plain"]
    if not args.shared_process:
        isolated(settings, variants, args.threads, 3 if args.quick else 7)
        return
    if len(settings) > 1:  # each setting in a fresh process (see the docstring)
        for setting in settings:
            subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--settings", setting,
                            "--variants", ",".join(variants), "--shared-process"] + (["--quick"] if args.quick else []),
                           check=True)
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; variants alternate in one process; "
          f"baseline: plain (nn.BatchNorm2d Conv-4, a loop over episodes)")
    for setting in settings:
        ways, shots, queries = SETTINGS[setting]
        models = {v: Variant(v) for v in variants}
        per_repeat = _episodes_per_repeat(ways)
        repeats = 3 if args.quick else 7
        episodes = [make_episode(ways, shots, queries, seed) for seed in range(per_repeat)]
        first_losses = {v: models[v].train_episode(episodes[0]) for v in variants}  # warm-up, same weights
        spread = max(first_losses.values()) - min(first_losses.values())
        rates: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(repeats):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                start = time.perf_counter()
                for episode in episodes:
                    models[v].train_episode(episode)
                rates[v].append(per_repeat / (time.perf_counter() - start))
        _report(f"{setting} ({ways * (shots + queries)} images per episode), {repeats} alternating repeats of "
                f"{per_repeat} episodes; first-episode losses agree to {spread:.1e}", rates)


if __name__ == "__main__":
    main()
