"""Make the shipped tutor model: chapter 06's MAML student model trained on SweSAT, frozen for serving.

    python -m metalearn_lite.education.train_tutor --out metalearn_lite/checkpoints/tutor_maml_swesat.npz

Same recipe as chapter 06 and ``bench/education_personalisation.py`` (4,000 training students,
split seed 0; 2PL fit for the CAT support sets; ``MAMLStudent(dim=4, num_inner_steps=5)``,
1,500 meta-steps by default). Writes the model (``TutorModel.save``) and records its SHA-256, the
command and the held-out AUC after 5 random answers (``metalearn_lite.checkpoints.record_checkpoint``:
the registry entry for the shipped folder, else a ``<file>.json`` sidecar).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

__all__ = ["train_swesat_tutor", "main"]


def train_swesat_tutor(num_steps: int = 1500, seed: int = 0, progress: bool = True):
    """Train on SweSAT's training students; returns (TutorModel, held-out test [1000, I], metrics dict)."""
    import torch

    from . import irt
    from .personalise import MAMLStudent, evaluate, random_support, split_students
    from .swesat import load_swesat
    from .tutor import TutorModel

    data = load_swesat()
    train, test = split_students(data.correct, test_fraction=0.2, seed=seed)
    fit = irt.fit_2pl(train, num_steps=300)
    torch.manual_seed(seed)
    maml = MAMLStudent(data.num_items, dim=4, num_inner_steps=5, seed=seed)
    maml.fit(train, num_steps=num_steps, fit=fit, progress=progress)
    scores = evaluate(maml.predict, test, random_support(test, 5, seed=seed + 1), num_bootstrap=200, seed=seed)
    tutor = TutorModel.from_maml(maml, data.item_names, data.parts, data="SweSAT 2022 sample (irtorch 0.5.6)",
                                 split="split_students(correct, test_fraction=0.2, seed=%d)" % seed,
                                 meta_steps=num_steps, method="MAMLStudent(dim=4, num_inner_steps=5)")
    metrics = {"auc_5_random": [round(scores.auc[0], 4), round(scores.auc[1], 4)]}
    return tutor, test, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="model file to write (.npz)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    from ..checkpoints import record_checkpoint

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    tutor, _, metrics = train_swesat_tutor(args.steps, args.seed)
    minutes = (time.perf_counter() - t0) / 60
    out = tutor.save(args.out)
    metadata = {"command": "python -m metalearn_lite.education.train_tutor " + " ".join(sys.argv[1:] if argv is None else argv),
                "torch": torch.__version__, "python": platform.python_version(),
                "wall_minutes": round(minutes, 1), **metrics, **tutor.metadata}
    record_checkpoint(out, metadata)
    print(f"wrote {out} ({out.stat().st_size} bytes) in {minutes:.1f} min; held-out AUC after 5 random answers "
          f"{metrics['auc_5_random'][0]:.3f} +/- {metrics['auc_5_random'][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
