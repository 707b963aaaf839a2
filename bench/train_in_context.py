"""Train chapter 09's in-context transformer on sinusoids, ship it, and compare it with the shipped MAML.

    python bench/train_in_context.py --steps 20000 --batch 32 --budget-minutes 30 --budget-cpu-minutes 3   # shipped
    python bench/train_in_context.py --steps 300 --out /tmp/icl                      # a quick try

The task distribution is the MAML paper's (``SinusoidTasks()``: A ~ U[0.1, 5], phi ~ U[0, pi],
x ~ U[-5, 5]); each training batch draws one context size in 1..40 and 20 query points. The
model is ``InContextRegressor`` (the chapter's transformer, std floor 1e-3) trained by the
Gaussian negative log-likelihood of the queries. Writes ``metalearn_lite/checkpoints/
transformer_sinusoid.pt`` (< 1 MB; ``{"model": "InContextRegressor", "config", "state_dict"}``;
its registry entry records this command, the steps run and the figures).

Prints the query MSE of the predictive mean at 1/3/10/20/40 context points (600 test tasks,
95% CIs) next to the shipped MAML's (``maml_sinusoid.pt``, trained at K = 5) after 10 gradient
steps with alpha = 0.01, on the same tasks (and both medians: from 1-3 points a few of MAML's tasks
blow up and swamp its mean). The GP-curve transformer is made by
``bench/train_np.py --model transformer``.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.reproduce_sinusoid import mse_after_steps  # noqa: E402
from metalearn_lite.algorithms import InContextRegressor  # noqa: E402
from metalearn_lite.models import MLP  # noqa: E402
from metalearn_lite.reproducibility import seed_everything  # noqa: E402
from metalearn_lite.tasks import SinusoidTasks  # noqa: E402
from metalearn_lite.training import load_checkpoint, mean_confidence_interval, meta_train, save_checkpoint  # noqa: E402
from metalearn_lite.training.checkpoint import shipped_checkpoint  # noqa: E402
from metalearn_lite.training.history import History  # noqa: E402

from metalearn_lite.checkpoints import SHIPPED_DIR as CHECKPOINTS  # noqa: E402  (the shipped folder, defined once)
FILENAME = "transformer_sinusoid.pt"
CONTEXT_SIZES = (1, 3, 10, 20, 40)
EVAL_SEED = 2024
NUM_QUERIES = 20


class _BudgetReached(Exception):
    pass


def sample_sinusoids(tasks: SinusoidTasks, batch: int, generator: torch.Generator, max_context: int = 40):
    """One training batch: a context size in 1..max_context, 20 queries."""
    num_context = int(torch.randint(1, max_context + 1, (1,), generator=generator))
    return tasks.sample(batch, num_context, NUM_QUERIES, generator=generator)


def compare_with_maml(model: InContextRegressor, num_tasks: int, tasks: SinusoidTasks = SinusoidTasks()) -> dict:
    """``{n_c: {"transformer": (mse, ci), "maml_10_steps": (mse, ci)}}`` on the same seeded tasks."""
    maml = None
    path = shipped_checkpoint("maml_sinusoid.pt")
    if path is not None:
        maml = MLP(1, (40, 40), 1)
        maml.load_state_dict(load_checkpoint(path)["maml"])
    table = {}
    for n_c in CONTEXT_SIZES:
        ep = tasks.sample(num_tasks, n_c, 100, generator=EVAL_SEED + n_c)
        with torch.no_grad():
            pred = model(ep.support_x, ep.support_y, ep.query_x)
        mse = ((pred.mean - ep.query_y) ** 2).mean((1, 2))
        m = mean_confidence_interval(mse.tolist())
        row = {"transformer": (round(m.mean, 4), round(m.ci95, 4))}
        if maml is not None:
            curve = mse_after_steps(maml, dict(maml.named_parameters()), ep.support_x, ep.support_y, ep.query_x,
                                    ep.query_y, inner_lr=0.01, max_steps=10)
            m = mean_confidence_interval(curve[:, -1].tolist())
            row["maml_10_steps"] = (round(m.mean, 4), round(m.ci95, 4))
            # a step from 1-3 points can blow up on a few tasks and swamp the mean: the median too
            row["maml_10_steps_median"] = (round(float(curve[:, -1].median()), 4), 0.0)
            row["transformer_median"] = (round(float(mse.median()), 4), 0.0)
        table[n_c] = row
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget-minutes", type=float, default=None, help="stop training at this wall time")
    parser.add_argument("--budget-cpu-minutes", type=float, default=None,
                        help="stop training after this much CPU time of this process (fairer on a shared machine)")
    parser.add_argument("--eval-tasks", type=int, default=600)
    parser.add_argument("--out", type=Path, default=CHECKPOINTS)
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/train_in_context.py",
                                                             *(sys.argv[1:] if argv is None else argv)])
    print(f"command: {command}")
    seed_everything(args.seed, num_threads=args.threads)
    tasks = SinusoidTasks()
    config = {"d_model": 64, "num_heads": 4, "num_layers": 4, "dim_feedforward": 128, "min_std": 1e-3}
    model = InContextRegressor(**config)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    budget_s = 60 * args.budget_minutes if args.budget_minutes else math.inf
    start, cpu_start = time.perf_counter(), time.process_time()
    cpu_budget_s = 60 * args.budget_cpu_minutes if args.budget_cpu_minutes else math.inf
    done = [0]

    def step_fn(step: int):
        progress = max(step / max(args.steps, 1), (time.perf_counter() - start) / budget_s,
                       (time.process_time() - cpu_start) / cpu_budget_s)
        if progress >= 1:
            raise _BudgetReached
        for group in optimiser.param_groups:   # cosine from lr to lr / 10
            group["lr"] = args.lr / 10 + 0.45 * args.lr * (1 + math.cos(math.pi * progress))
        done[0] = step + 1
        return model.loss(sample_sinusoids(tasks, args.batch, gen)).loss

    history = History()
    cpu = time.process_time()
    try:
        meta_train(step_fn, optimiser, args.steps, log_every=50, description="training the transformer on sinusoids",
                   grad_clip=10.0, history=history)
    except _BudgetReached:
        print(f"budget ({args.budget_minutes} wall-min / {args.budget_cpu_minutes} CPU-min) reached after {done[0]} steps")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    model.eval()
    table = compare_with_maml(model, args.eval_tasks)
    metadata = {"command": command, "config": config, "steps": done[0], "batch": args.batch, "lr": args.lr,
                "seed": args.seed, "train_context": [1, 40], "num_queries": NUM_QUERIES,
                "budget_minutes": args.budget_minutes,
                "budget_cpu_minutes": args.budget_cpu_minutes, "final_loss": round(history.last("loss", 10), 4),
                "query_mse": {str(n): row for n, row in table.items()}, "eval_tasks": args.eval_tasks,
                "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1), "torch": torch.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / FILENAME
    digest = save_checkpoint(path, model, metadata, config=config)  # {model, config, state_dict}
    print(f"transformer: {done[0]} steps of {args.batch} tasks in {wall:.1f} s wall / {cpu:.1f} s CPU "
          "(shared machine, noisy)")
    print(f"query MSE of the mean, {args.eval_tasks} tasks per column, 95% CI:")
    print("| context points | " + " | ".join(str(n) for n in table) + " |")
    print("|---|" + "---|" * len(table))
    for name in table[CONTEXT_SIZES[0]]:
        print(f"| {name} | " + " | ".join(f"{table[n][name][0]:.3f} +/- {table[n][name][1]:.3f}" for n in table) + " |")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}...)")


if __name__ == "__main__":
    main()
