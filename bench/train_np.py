"""Train the CNP and the latent NP of chapter 04 on GP curves and ship small checkpoints.

    python bench/train_np.py                       # both models, the shipped budget
    python bench/train_np.py --model cnp --steps 500 --out /tmp/np   # a quick try

Writes ``metalearn_lite/checkpoints/cnp_gp.pt`` and ``latent_np_gp.pt`` (each < 1 MB) with
``save_checkpoint`` (atomic, SHA-256 sidecar recording this command, the config and the
held-out figures). A checkpoint holds ``{"model": "CNP"|"LatentNP", "config": {...},
"state_dict": {...}}``; chapter 04 rebuilds the model with ``CNP(**config)`` and loads it.

Prints the training time (wall and CPU seconds: noisy on a shared machine) and the
held-out log-likelihood per target point, with 95% CIs, next to the exact GP oracle's.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metalearn_lite.algorithms import CNP, LatentNP  # noqa: E402
from metalearn_lite.reproducibility import seed_everything  # noqa: E402
from metalearn_lite.tasks import GPCurves  # noqa: E402
from metalearn_lite.training import mean_confidence_interval, meta_train, save_checkpoint  # noqa: E402

CHECKPOINTS = REPO / "metalearn_lite" / "checkpoints"
NAMES = {"cnp": ("CNP", "cnp_gp.pt"), "latent_np": ("LatentNP", "latent_np_gp.pt")}
EVAL_SEED = 2024


def build(kind: str, hidden: int) -> tuple[torch.nn.Module, dict]:
    if kind == "cnp":
        config = {"hidden": hidden, "r_dim": hidden}
        return CNP(**config), config
    config = {"hidden": hidden, "r_dim": hidden, "z_dim": hidden // 2}
    return LatentNP(**config), config


def held_out(model: torch.nn.Module, gp: GPCurves, num_tasks: int) -> dict:
    """Log-likelihood per target point on fresh tasks (seeded, disjoint from training's seed)."""
    episode = gp.sample(num_tasks, generator=EVAL_SEED)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    if isinstance(model, LatentNP):
        model_ll = model.log_likelihood(episode, num_samples=64, generator=gen)
    else:
        model_ll = model.log_likelihood(episode)
    oracle_ll = gp.log_likelihood(episode)
    m, o = mean_confidence_interval(model_ll.tolist()), mean_confidence_interval(oracle_ll.tolist())
    return {"model_ll": round(m.mean, 4), "model_ll_ci95": round(m.ci95, 4),
            "oracle_ll": round(o.mean, 4), "oracle_ll_ci95": round(o.ci95, 4),
            "num_context": int(episode.support_x.shape[1]), "num_tasks": num_tasks}


def train(kind: str, args: argparse.Namespace, out: Path) -> None:
    seed_everything(args.seed, num_threads=args.threads)
    gp = GPCurves()
    model, config = build(kind, args.hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=args.steps, eta_min=args.lr / 10)
    gen = torch.Generator().manual_seed(args.seed)

    def step_fn(step: int):
        schedule.step() if step else None
        return model.loss(gp.sample(args.batch, generator=gen)).loss

    wall, cpu = time.perf_counter(), time.process_time()
    history = meta_train(step_fn, optimiser, args.steps, log_every=50, description=f"training {kind}", grad_clip=10.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = held_out(model, gp, args.eval_tasks)
    cls, filename = NAMES[kind]
    state = {"model": cls, "config": config,
             "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    metadata = {"command": "python " + " ".join(shlex.quote(a) for a in ["bench/train_np.py", *sys.argv[1:]]),
                "config": config, "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                "final_loss": round(history.last("loss", 10), 4), "held_out": figures,
                "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1), "torch": torch.__version__}
    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    digest = save_checkpoint(path, state, metadata)
    print(f"{kind}: {args.steps} steps in {wall:.1f} s wall / {cpu:.1f} s CPU "
          f"({1000 * wall / max(args.steps, 1):.1f} ms/step; shared machine, noisy)")
    print(f"  held-out log-lik per target point ({figures['num_tasks']} tasks, {figures['num_context']} context): "
          f"{kind} {figures['model_ll']:.3f} +/- {figures['model_ll_ci95']:.3f}, "
          f"GP oracle {figures['oracle_ll']:.3f} +/- {figures['oracle_ll_ci95']:.3f}, "
          f"gap {figures['oracle_ll'] - figures['model_ll']:.3f}")
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
          f"({path.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}...)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["cnp", "latent_np", "both"], default="both")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-tasks", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=CHECKPOINTS)
    args = parser.parse_args(argv)
    for kind in (["cnp", "latent_np"] if args.model == "both" else [args.model]):
        train(kind, args, args.out)


if __name__ == "__main__":
    main()
