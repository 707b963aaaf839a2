"""Few-shot personalisation on SweSAT held-out students: methods x K, random vs adaptive items.

Task: from K answered items of a held-out student, predict correctness on the rest.
Prints AUC (pooled over all query answers, 95% bootstrap CI over students), accuracy and NLL
(per-student means, 95% normal CIs), for K in 0, 1, 3, 5, 10, 20, 40, with support items
chosen at random or adaptively (CAT: max Fisher information under the 2PL).

    python bench/education_personalisation.py            # full budget (~6-10 min on 2 cores)
    python bench/education_personalisation.py --quick    # smaller budget (~2 min)

Needs the SweSAT files: pip install --no-deps irtorch==0.5.6
Its stored run (the README's personalisation table and chapter 06's closing table; 2PL + grid
posterior): AUC 0.646 (K=0), 0.668 (K=5 random), 0.699 (K=5 adaptive), 0.706 (K=40 random).
"""
from __future__ import annotations

import argparse
import time

import torch

from metalearn_lite.education import irt
from metalearn_lite.education.personalise import (
    MAMLStudent, PopulationBaseline, SetEncoderStudent, TwoPLPredictor, adaptive_support, evaluate,
    random_support, split_students,
)
from metalearn_lite.education.swesat import load_swesat

SHOTS = (0, 1, 3, 5, 10, 20, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller training budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data = load_swesat()
    train, test = split_students(data.correct, test_fraction=0.2, seed=args.seed)
    print(f"SweSAT: {data.num_students} students x {data.num_items} items; train {train.shape[0]}, "
          f"held-out {test.shape[0]}; threads {args.threads}")
    timings = {}
    t0 = time.perf_counter()
    fit = irt.fit_2pl(train, num_steps=300)
    timings["2PL fit"] = time.perf_counter() - t0
    print(f"2PL: fitted ability scale mean {fit.prior_mean:.2f} SD {fit.prior_sd:.2f} (prior for new students)")

    maml_steps, enc_steps = (300, 500) if args.quick else (1500, 2000)
    t0 = time.perf_counter()
    maml = MAMLStudent(data.num_items, dim=4, num_inner_steps=5, seed=args.seed)
    maml.fit(train, num_steps=maml_steps, fit=fit, progress=False)
    timings[f"MAML meta-training ({maml_steps} steps)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = SetEncoderStudent(data.num_items, dim=4, seed=args.seed)
    enc.fit(train, num_steps=enc_steps, fit=fit, progress=False)
    timings[f"set-encoder training ({enc_steps} steps)"] = time.perf_counter() - t0

    methods = {
        "population": PopulationBaseline(train).predict,
        "2PL + grid posterior": TwoPLPredictor(fit).predict,
        "MAML student model": maml.predict,
        "set encoder (NP-style)": enc.predict,
    }
    t0 = time.perf_counter()
    cat = adaptive_support(test, max(SHOTS), fit)
    timings["CAT item selection (40 items)"] = time.perf_counter() - t0
    header = f"{'items':9s} {'K':>3s}  {'method':24s} {'AUC':>15s} {'accuracy':>15s} {'NLL':>15s}"
    print()
    print(header)
    print("-" * len(header))
    best_vs_2pl = []
    for mode in ("random", "adaptive"):
        for k in SHOTS:
            if mode == "adaptive" and k == 0:
                continue
            support = random_support(test, k, seed=args.seed + 1) if mode == "random" else cat[:, :k]
            row = {}
            for name, predict in methods.items():
                s = evaluate(predict, test, support, num_bootstrap=args.bootstrap, seed=args.seed)
                row[name] = s
                print(f"{mode:9s} {k:3d}  {name:24s} {s.auc[0]:.3f} ± {s.auc[1]:.3f}   "
                      f"{s.accuracy[0]:.3f} ± {s.accuracy[1]:.3f}   {s.nll[0]:.3f} ± {s.nll[1]:.3f}")
            meta_best = max(row["MAML student model"].auc[0], row["set encoder (NP-style)"].auc[0])
            best_vs_2pl.append((mode, k, meta_best - row["2PL + grid posterior"].auc[0]))
        print()
    print("best meta-learned AUC minus 2PL AUC:")
    print("  " + ", ".join(f"{m} K={k}: {d:+.3f}" for m, k, d in best_vs_2pl))
    print("\ntimings (s, noisy: shared 2-core machine):")
    for name, t in timings.items():
        print(f"  {name}: {t:.1f}")


if __name__ == "__main__":
    main()
