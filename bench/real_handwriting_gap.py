"""Why a real-handwriting ProtoNet errs on Lake's task: the same model under changed conditions.

Each line is Lake's 20-way one-shot error (mean +/- 95% CI over ``--episodes`` episodes) of one
ProtoNet with one thing changed, so the causes can be told apart:

- ``lake20``: the held-out pool, as in ``bench/real_handwriting.py`` (the same episodes);
- ``20-way, 2 drawers, all alphabets``: the 20 classes from *all* the pool's alphabets, the
  support by one drawer and the queries by another (Lake's drawers, not his alphabet rule);
- ``20w1s``: the usual 20-way 1-shot episode (any drawers, all alphabets);
- ``lake20 on <alphabet> only``: one alphabet of the pool at a time;
- ``lake20, batch norm over 100 more images``: Conv-4 normalises with the statistics of the
  batch it sees, 40 images of one alphabet here; this adds 100 other images of the pool to the
  batch (their embeddings unused), to see whether the small test batch hurts;
- ``lake20 on its own training characters``: Lake episodes of the real set the model trained
  on (no augmentation): low error there and high error held out is a generalisation gap, high
  error on both is underfitting.

Usage::

    python bench/real_handwriting_gap.py --episodes 300      # the shipped real ProtoNet, small2-only
    python bench/real_handwriting_gap.py --model run/protonet_glyphs_small2_conv4.pt --train-set small2 --pool small1-only

The real zips come from the loader, as in ``bench/real_handwriting.py`` (``--omniglot-root``, the
cache, or ``../shared/data/omniglot``); without them the script says so and stops.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_handwriting import (load_protonet_file, omniglot_set, protonet_metric,  # noqa: E402
                              sampler, test_pools)

from metalearn_lite.algorithms.protonet import protonet_episode  # noqa: E402
from metalearn_lite.data.within_alphabet import WithinAlphabetSampler  # noqa: E402
from metalearn_lite.reproducibility import seed_everything  # noqa: E402
from metalearn_lite.training import evaluate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="protonet_glyphs_small1_conv4",
                        help="a shipped ProtoNet's name or a checkpoint file (default: the shipped real ProtoNet)")
    parser.add_argument("--train-set", default="small1", choices=("small1", "small2"),
                        help="the real set the model trained on (its own-characters line)")
    parser.add_argument("--pool", default="small2-only", help="the held-out pool (default small2-only)")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--omniglot-root", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    seed_everything(0, num_threads=args.threads)

    pools = {p.name: p for p in test_pools(args.omniglot_root, log=lambda *_: None)}
    trained_on = omniglot_set(args.train_set, args.omniglot_root)
    if args.pool not in pools or trained_on is None:
        print("the two real small Omniglot zips are needed (see the docstring): nothing to do")
        return 0
    pool = pools[args.pool]
    net, meta = load_protonet_file(args.model)
    seen = set(meta.get("real_train_alphabets", ())) & set(pool.alphabets)
    if seen:
        parser.error(f"{args.model} trained on {sorted(seen)}, which are in {args.pool}: pick the other pool")
    metric = protonet_metric(net)
    n = args.episodes
    print(f"{args.model} on {args.pool} ({', '.join(pool.alphabets)}), {n} episodes per line")

    def line(name: str, episodes, score=metric) -> None:
        r = evaluate(score, episodes, n, progress=False)
        print(f"  {name:<58} error {100 * (1 - r.mean):5.1f} +/- {100 * r.ci95:.1f}%", flush=True)

    line("lake20 (one alphabet, 2 drawers)", sampler(pool, "lake20", 0))
    line("20-way, 2 drawers, all alphabets", WithinAlphabetSampler(
        pool.class_images, ["all"] * len(pool.class_alphabet), 20, 1, 1, seed=5))
    line("20w1s (any drawers, all alphabets)", sampler(pool, "20w1s", 0))
    for alphabet in pool.alphabets:
        sub = pool.subset([alphabet], alphabet)
        try:
            episodes = WithinAlphabetSampler(sub.class_images, sub.class_alphabet, 20, 1, 1, seed=7)
        except ValueError:
            print(f"  lake20 on {alphabet} only: fewer than 20 characters")
            continue
        line(f"lake20 on {alphabet} only", episodes)

    extra_gen = torch.Generator().manual_seed(3)
    flat = pool.class_images.flatten(0, 1)

    def padded(episode) -> float:
        extra = flat[torch.randint(len(flat), (100,), generator=extra_gen)]
        with torch.no_grad():
            return float(protonet_episode(lambda x: net.encoder(torch.cat([x, extra]))[: len(x)], episode).accuracy)

    line("lake20, batch norm over 100 more images", sampler(pool, "lake20", 0), padded)
    line(f"lake20 on its own training characters ({args.train_set})", WithinAlphabetSampler(
        trained_on.class_images, trained_on.class_alphabet, 20, 1, 1, seed=20_000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
