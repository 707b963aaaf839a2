"""Few-shot accuracy on real handwriting (Omniglot) of every shipped few-shot model.

The shipped Glyphs models were trained on characters rendered from fonts. This script
tests them, and any real-handwriting ProtoNet, on *real* Omniglot alphabets they never
trained on, in five protocols (mean +/- 95% CI over ``--episodes`` episodes each; every
model sees the same episodes):

- ``lake20``: Lake et al. (2015)'s one-shot task: 20 characters of *one* alphabet, the
  support drawn by one person and the queries by another (one query per class);
- ``lake5``: the same within-alphabet, two-drawer episode with 5 ways (so the 5-way MAMLs
  get a within-alphabet number too);
- ``5w1s``, ``5w5s``, ``20w1s``: the usual N-way K-shot episodes (classes from all the test
  alphabets, ``--queries`` 1 per class by default, as in Lake's task, which halves the cost on a
  shared CPU; any drawers; a query is never one of the shots).

Test pools, all of alphabets the model never trained on:

- ``small2-only``: the alphabets of ``images_background_small2`` that are not in
  ``images_background_small1`` (Japanese_(katakana), Sanskrit, Tagalog: 106 characters);
  the two small sets share Latin and Greek (identical images), so those are dropped;
- ``small1-only``: the reverse (Korean, Balinese, Early_Aramaic: 86 characters);
- ``evaluation``: the 20 evaluation alphabets (659 characters) when ``images_evaluation.zip``
  is available.

A model trained on real data is tested only on pools with none of its training alphabets
(its recorded ``real_train_alphabets``); other cells print ``-``. The 5-way MAMLs have a
5-way head, so their 20-way cells are ``-``; they adapt with their inner loop at test
(``test_inner_steps`` from the registry, 3 steps at alpha = 0.4). "raw pixels" is a
nearest-prototype classifier on the 784 pixels.

The real zips come from the loader (``metalearn_lite.data.Omniglot``): ``--omniglot-root``
(a folder with the zips), else the cache (``metalearn data omniglot --download``), else
``../shared/data/omniglot`` beside the checkout. Pools whose zips are absent are skipped
with a message.

Usage::

    python bench/real_handwriting.py --episodes 400 --threads 2
    python bench/real_handwriting.py --episodes 400 --protonet /tmp/run/protonet_omniglot_small2_conv4.pt
    # store the table in the shipped real ProtoNet's registry entry (chapters 03 and 05 show it):
    python bench/real_handwriting.py --episodes 400 --record metalearn_lite/checkpoints
    # or split the work (per pool and model, in parallel) and record the pieces afterwards:
    python bench/real_handwriting.py --episodes 400 --pools small2-only --models maml2 --json a.json
    python bench/real_handwriting.py --record metalearn_lite/checkpoints --from-json a.json b.json

The stored table was made the second way on a 2-core machine shared with many other jobs (the
registry entry lists the commands); 400 episodes per cell took 5-25 minutes per model and pool there.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from metalearn_lite.algorithms.maml import MAML, accuracy
from metalearn_lite.algorithms.protonet import ProtoNet, prototypes, squared_euclidean_logits
from metalearn_lite.data.episodes import EpisodeSampler
from metalearn_lite.data.transforms import random_affine
from metalearn_lite.data.within_alphabet import WithinAlphabetSampler, held_out_alphabets
from metalearn_lite.reproducibility import seed_everything
from metalearn_lite.training import EvalResult, evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_OMNIGLOT = REPO_ROOT.parent / "shared" / "data" / "omniglot"
PROTOCOLS = ("lake20", "lake5", "5w1s", "5w5s", "20w1s")
PROTOCOL_NAMES = {"lake20": "20-way 1-shot, one alphabet, 2 drawers (Lake)",
                  "lake5": "5-way 1-shot, one alphabet, 2 drawers",
                  "5w1s": "5-way 1-shot", "5w5s": "5-way 5-shot", "20w1s": "20-way 1-shot"}
TEST_QUERIES = 1   # per class in the usual N-way K-shot episodes (--queries), as in Lake's task


@dataclass
class RealSet:
    """Class images ``[C, 20, 1, 28, 28]`` (drawer axis in drawer order) and each class's alphabet."""

    name: str
    class_images: Tensor
    class_alphabet: list[str]

    @property
    def alphabets(self) -> list[str]:
        return sorted(set(self.class_alphabet))

    def subset(self, alphabets: list[str], name: str) -> "RealSet":
        keep = [i for i, a in enumerate(self.class_alphabet) if a in set(alphabets)]
        return RealSet(name, self.class_images[keep], [self.class_alphabet[i] for i in keep])


def omniglot_set(set_name: str, root: str | None = None, log: Callable[[str], None] = print) -> RealSet | None:
    """One Omniglot zip as a :class:`RealSet` (``"small1"``, ``"small2"``, ``"background"``,
    ``"evaluation"``), from ``root``, the cache, or ``../shared/data/omniglot``; None if absent."""
    from metalearn_lite.data.omniglot import Omniglot, OmniglotNotFoundError

    kwargs = {"small1": dict(small=1), "small2": dict(small=2), "background": dict(),
              "evaluation": dict(background=False)}[set_name]
    roots = [root] if root is not None else [None, SHARED_OMNIGLOT]
    for where in roots:
        try:
            data = Omniglot(root=where, progress=False, **kwargs)
        except OmniglotNotFoundError:
            continue
        drawers = data.class_drawers()
        if not bool((drawers == drawers[0]).all()):
            raise ValueError(f"{data.source}: the drawers are not in the same order in every class")
        return RealSet(set_name, data.class_images(), data.class_alphabet_names())
    log(f"Omniglot {set_name}: not found in {roots[0] or 'the cache'}"
        f"{'' if root is not None else f' nor {SHARED_OMNIGLOT}'}; skipped")
    return None


def test_pools(root: str | None, log: Callable[[str], None] = print) -> list[RealSet]:
    """The held-out pools available here (see the module docstring)."""
    pools = []
    small1, small2 = omniglot_set("small1", root, log), omniglot_set("small2", root, log)
    if small1 is not None and small2 is not None:
        only2 = [small2.alphabets[i] for i in held_out_alphabets(small2.alphabets, small1.alphabets)]
        only1 = [small1.alphabets[i] for i in held_out_alphabets(small1.alphabets, small2.alphabets)]
        pools.append(small2.subset(only2, "small2-only"))
        pools.append(small1.subset(only1, "small1-only"))
    evaluation = omniglot_set("evaluation", root, log)
    if evaluation is not None:
        pools.append(evaluation)
    return pools


def thicken(pool: RealSet, amount: float) -> RealSet:
    """Pen width, one suspect for the Glyphs-to-real gap: blend each image with its 1-px dilation
    (3x3 max): ``(1 - amount) * drawn + amount * dilated``. Glyph strokes carry more ink (mean per
    image ~0.15 against ~0.09 for real characters); ``amount = 0.5`` about matches it."""
    if not 0 <= amount <= 1:
        raise ValueError(f"thicken amount must be in [0, 1], got {amount}")
    import torch.nn.functional as F

    x = pool.class_images
    dilated = F.max_pool2d(x.flatten(0, 1), 3, stride=1, padding=1).reshape(x.shape)
    return RealSet(f"{pool.name}, thickened {amount:g}", (1 - amount) * x + amount * dilated, pool.class_alphabet)


def sampler(pool: RealSet, protocol: str, seed: int, queries: int = TEST_QUERIES):
    """The episode stream of ``protocol`` on ``pool`` (a fixed seed: every model sees the same episodes)."""
    seed = 20_000 + 100 * PROTOCOLS.index(protocol) + seed
    if protocol == "lake20":
        return WithinAlphabetSampler(pool.class_images, pool.class_alphabet, 20, 1, 1, seed=seed)
    if protocol == "lake5":
        return WithinAlphabetSampler(pool.class_images, pool.class_alphabet, 5, 1, 1, seed=seed)
    ways, shots = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}[protocol]
    return EpisodeSampler(pool.class_images, ways, shots, queries, seed=seed)


# --------------------------------------------------------------------------- models
@dataclass
class Contender:
    """A model under test: how it scores one episode, which ways it can do, what real data it saw."""

    name: str
    metric: Callable
    ways: tuple[int, ...] | None          # None: any number of ways
    real_train_alphabets: tuple[str, ...] = ()


def protonet_metric(net: ProtoNet, tta: int = 1, seed: int = 0):
    """Query accuracy of ``net`` on an episode. ``tta > 1``: test-time augmentation, each support
    and query image embedded as itself and ``tta - 1`` random affine copies (rotation up to 10
    degrees, zoom 0.9-1.1, shear and shift up to 0.1; one batch, so batch norm sees them all), its
    embedding the mean of its copies'; prototypes and distances as usual."""
    if tta < 1:
        raise ValueError(f"tta must be >= 1, got {tta}")
    generator = torch.Generator().manual_seed(seed)

    def metric(episode) -> float:
        with torch.no_grad():
            if tta == 1:
                return float(net(episode).accuracy)
            images = torch.cat([episode.support_x, episode.query_x])
            copies = [images] + [random_affine(images, generator) for _ in range(tta - 1)]
            z = net.encoder(torch.cat(copies)).view(tta, images.shape[0], -1).mean(0)
            ns = episode.support_x.shape[0]
            protos = prototypes(z[:ns], episode.support_y, episode.num_ways)
            return float(accuracy(squared_euclidean_logits(z[ns:], protos), episode.query_y))
    return metric


def maml_metric(maml: MAML, num_inner_steps: int):
    def metric(episode) -> float:
        # first_order=True: the adapted weights are the same; only the meta-gradient (not needed
        # at test) would differ, and the graph for it costs time
        adapted = maml.adapt(episode.support_x, episode.support_y, num_inner_steps=num_inner_steps,
                             first_order=True).params
        with torch.no_grad():
            return float(accuracy(maml(episode.query_x, adapted), episode.query_y))
    return metric


def raw_pixels() -> Contender:
    return Contender("raw pixels (nearest prototype)", protonet_metric(ProtoNet(torch.nn.Flatten())), None)


MODELS = ("raw", "protonet", "protonet-augmented", "protonet-real", "maml", "maml2", "extra")


def shipped_contenders(extra: list[Path], log: Callable[[str], None] = print,
                       models: tuple[str, ...] = MODELS, tta: int = 1) -> list[Contender]:
    """raw pixels, every shipped few-shot model, and the ProtoNet checkpoints in ``extra``
    (``models`` picks among :data:`MODELS`)."""
    from metalearn_lite.training.checkpoint import CheckpointError
    from metalearn_lite.training.pretrained import pretrained_glyphs_maml, pretrained_protonet

    out = [raw_pixels()] if "raw" in models else []
    if "protonet" in models:
        protonet, info = pretrained_protonet()
        out.append(Contender("ProtoNet, Glyphs only (shipped)" + _tta_label(tta), protonet_metric(protonet, tta), None))
    if "protonet-augmented" in models:
        bent, _ = pretrained_protonet(data="glyphs-augmented")
        out.append(Contender("ProtoNet, Glyphs only, mapped and bent (shipped)" + _tta_label(tta),
                             protonet_metric(bent, tta), None))
    try:
        if "protonet-real" in models:
            from metalearn_lite.training.pretrained import pretrained_real_protonet
            real, real_info = pretrained_real_protonet()
            out.append(Contender(f"ProtoNet, Glyphs + real {real_info['real_train_set'].split('+')[-1]} (shipped)"
                                 + _tta_label(tta), protonet_metric(real, tta), None,
                                 tuple(real_info["real_train_alphabets"])))
    except (ImportError, CheckpointError) as exc:
        log(f"the shipped real-handwriting ProtoNet is not available ({exc}); skipped")
    for first_order in (True, False):
        if ("maml" if first_order else "maml2") not in models:
            continue
        maml, minfo = pretrained_glyphs_maml(first_order=first_order)
        order = "first" if first_order else "second"
        out.append(Contender(f"MAML {order} order, Glyphs only (shipped)",
                             maml_metric(maml, minfo["config"]["test_inner_steps"]),
                             (minfo["config"]["model_kwargs"]["num_classes"],)))
    for path in extra if "extra" in models else []:
        net, meta = load_protonet_file(path)
        label = f"ProtoNet, {extra_label(meta, path)} (not shipped)" + _tta_label(tta)
        if label in {c.name for c in out}:     # two runs of one recipe: tell them apart by their file
            label += f" [{path}]"
        out.append(Contender(label, protonet_metric(net, tta), None, tuple(meta.get("real_train_alphabets", ()))))
    return out


def extra_label(meta: dict, path: Path) -> str:
    """What a ``--protonet`` checkpoint was trained on: its real set (and the fraction of Glyphs
    episodes mixed in, ``--mix-glyphs``), or its Glyphs generator study (style, drawers,
    alphabets), else its file name."""
    if "real_train_set" in meta:
        label = meta["real_train_set"].replace("glyphs+", "Glyphs + real ")
        mix = meta.get("mix_glyphs")
        return label + (f", {mix['fraction']:g} of the episodes Glyphs" if mix else "")
    study = meta.get("glyphs_generator")
    if study is None:
        return path.stem
    parts = [f"style {study['style']}"]
    if "drawers" in study:
        parts.append(f"{study['drawers']} drawers")
    if "alphabets" in study:
        parts.append(f"{len(study['alphabets'])} alphabets")
    return "Glyphs, " + ", ".join(parts)


def _tta_label(tta: int) -> str:
    return f", test-time augmentation x{tta}" if tta > 1 else ""


def load_protonet_file(path: Path) -> tuple[ProtoNet, dict]:
    """A ProtoNet checkpoint written by bench/reproduce_fewshot.py anywhere on disk (or a shipped one)."""
    from metalearn_lite.training.checkpoint import load_model

    encoder, meta = load_model(path)  # the Conv-4 rebuilt from the class and config stored with it
    net = ProtoNet(encoder, distance=meta.get("config", {}).get("distance", "euclidean"))
    return net.eval(), meta


def protocol_ways(protocol: str) -> int:
    return {"lake20": 20, "lake5": 5, "5w1s": 5, "5w5s": 5, "20w1s": 20}[protocol]


def run(contenders: list[Contender], pools: list[RealSet], protocols: list[str], episodes: int,
        seed: int = 0, log: Callable[[str], None] = print, queries: int = TEST_QUERIES) -> dict:
    """``{pool: {model: {protocol: EvalResult}}}`` (cells a model cannot or must not do are absent)."""
    results: dict = {}
    for pool in pools:
        log(f"\n== {pool.name}: {len(pool.class_alphabet)} characters of {', '.join(pool.alphabets)}")
        for c in contenders:
            seen = set(c.real_train_alphabets) & set(pool.alphabets)
            if seen:
                log(f"  {c.name}: skipped (trained on {', '.join(sorted(seen))})")
                continue
            for protocol in protocols:
                if c.ways is not None and protocol_ways(protocol) not in c.ways:
                    continue
                try:
                    stream = sampler(pool, protocol, seed, queries)
                except ValueError as exc:      # e.g. no alphabet with 20 characters
                    log(f"  {protocol}: not possible on {pool.name} ({exc})")
                    continue
                r = evaluate(c.metric, stream, num_episodes=episodes, description=f"{c.name[:24]} {protocol}")
                results.setdefault(pool.name, {}).setdefault(c.name, {})[protocol] = r
                log(f"  {c.name:<48} {protocol:>6}: error {100 * (1 - r.mean):5.1f}% "
                    f"(accuracy {r.percent()}, {r.num_episodes} episodes)")
    return results


def format_table(results: dict, protocols: list[str], episodes: int) -> str:
    lines = [f"Accuracy (%) on real held-out alphabets, mean +/- 95% CI over {episodes} episodes per cell"]
    for pool, rows in results.items():
        head = f"{'[' + pool + ']':<48}" + "".join(f"{p:>15}" for p in protocols)
        lines += ["", head, "-" * len(head)]
        for name, cells in rows.items():
            lines.append(f"{name:<48}" + "".join(
                f"{100 * cells[p].mean:>8.1f} +/-{100 * cells[p].ci95:>4.1f}" if p in cells else f"{'-':>15}"
                for p in protocols))
    return "\n".join(lines)


def as_json(results: dict) -> dict:
    return {pool: {name: {p: {"mean": round(r.mean, 4), "ci95": round(r.ci95, 4), "episodes": r.num_episodes}
                          for p, r in cells.items()} for name, cells in rows.items()}
            for pool, rows in results.items()}


def record(folder: Path, table: dict, commands: list[str], episodes: int, log, queries: int = TEST_QUERIES) -> None:
    """Store the table with the real ProtoNet in ``folder`` (``metrics.real_handwriting_benchmark`` of its
    registry entry for the shipped folder, else its sidecar); rows already there and not in ``table``
    are kept (runs per pool or model may be recorded one by one)."""
    from metalearn_lite.checkpoints import checkpoint_info, record_checkpoint
    from metalearn_lite.training.pretrained import PROTONET_REAL

    path = folder / PROTONET_REAL
    metadata = checkpoint_info(path)["metadata"]
    old = metadata.get("real_handwriting_benchmark", {})
    accuracy = old.get("accuracy", {})
    for pool, rows in table.items():
        for model, cells in rows.items():
            accuracy.setdefault(pool, {}).setdefault(model, {}).update(cells)
    commands = [c for c in old.get("commands", []) if c not in commands] + list(commands)
    metadata["real_handwriting_benchmark"] = {
        "commands": commands, "episodes": episodes, "test_queries": queries,
        "protocols": PROTOCOL_NAMES, "accuracy": accuracy}
    record_checkpoint(path, metadata)
    log(f"recorded the table with {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=400, help="episodes per cell (default 400)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"subset of {','.join(PROTOCOLS)}")
    parser.add_argument("--omniglot-root", default=None, help="folder with the Omniglot zips")
    parser.add_argument("--protonet", type=Path, action="append", default=[],
                        help="another ProtoNet checkpoint from reproduce_fewshot.py (repeatable)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)} (default all)")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None, metavar="FILE",
                        help="with --record: store these --json results instead of running anything")
    parser.add_argument("--pools", default=None, help="only these test pools, e.g. small2-only (default: all found)")
    parser.add_argument("--thicken", type=float, default=0.0, metavar="A",
                        help="blend the real images with their 1-px dilation (0..1; 0.5 matches Glyphs' mean ink)")
    parser.add_argument("--queries", type=int, default=TEST_QUERIES, help="queries per class, N-way K-shot (1)")
    parser.add_argument("--tta", type=int, default=1, metavar="K",
                        help="ProtoNets: embed each image as the mean of itself and K-1 random affine copies (default 1: off)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--record", type=Path, default=None, metavar="DIR",
                        help="store the table with DIR/<real ProtoNet> (its registry entry, or sidecar outside the shipped folder)")
    args = parser.parse_args(argv)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    if not protocols or any(p not in PROTOCOLS for p in protocols):
        parser.error(f"--protocols must be a comma-separated subset of {','.join(PROTOCOLS)}, got {args.protocols!r}")
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])

    def log(text: str) -> None:
        print(text, flush=True)

    log(f"command: {command}")
    if args.from_json:
        if args.record is None:
            parser.error("--from-json needs --record DIR")
        for path in args.from_json:
            stored = json.loads(path.read_text())
            run_command = re.sub(r" --json \S+", "", stored["command"])   # where it wrote is no part of it
            record(args.record, stored["accuracy"], [run_command], stored["episodes"], log, stored["queries"])
        return 0
    seed_everything(args.seed, num_threads=args.threads)
    pools = test_pools(args.omniglot_root, log)
    if args.pools:
        pools = [p for p in pools if p.name in {n.strip() for n in args.pools.split(",")}]
    if args.thicken:
        pools = [thicken(p, args.thicken) for p in pools]
        for p in pools:
            log(f"{p.name}: mean ink {float(p.class_images.mean()):.3f}")
    if not pools:
        log("no real Omniglot test pool is available: nothing to do")
        return 0
    if args.tta < 1:
        parser.error(f"--tta must be >= 1, got {args.tta}")
    contenders = shipped_contenders(args.protonet, log, tuple(m.strip() for m in args.models.split(",")), args.tta)
    start = time.perf_counter()
    results = run(contenders, pools, protocols, args.episodes, args.seed, log, args.queries)
    table = format_table(results, protocols, args.episodes)
    log(f"\n== Summary ({time.perf_counter() - start:.0f} s of testing)\ncommand: {command}\n{table}")
    if args.json is not None:
        from metalearn_lite.atomic import atomic_writer
        with atomic_writer(args.json) as handle:
            handle.write((json.dumps({"command": command, "episodes": args.episodes, "queries": args.queries,
                                      "accuracy": as_json(results)}, indent=2) + "\n").encode())
    if args.record is not None:
        record(args.record, as_json(results), [command], args.episodes, log, args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
