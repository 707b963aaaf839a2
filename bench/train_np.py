"""Train the neural processes of chapters 04, 07 and 09 on GP curves, ship small checkpoints,
and compare every shipped model with the exact GP oracle.

    python bench/train_np.py                       # CNP and latent NP (chapter 04), the shipped budget
    python bench/train_np.py --model cnp --steps 500 --out /tmp/np   # a quick try
    python bench/train_np.py --model attentive_np --steps 20000 --batch 32 --budget-minutes 30 --budget-cpu-minutes 4   # chapter 09
    python bench/train_np.py --model transformer --steps 20000 --batch 32 --budget-minutes 30 --budget-cpu-minutes 4    # chapter 09
    python bench/train_np.py --table               # every shipped model at 1/3/10/20/40 context points

Writes ``metalearn_lite/checkpoints/cnp_gp.pt``, ``latent_np_gp.pt``, ``attentive_np_gp.pt`` or
``transformer_gp.pt`` (each < 1 MB) with ``save_checkpoint`` (atomic; the SHA-256, this command, the config and the
held-out figures go to the file's entry in ``metalearn_lite/checkpoints/registry.json``). A checkpoint holds ``{"model":
"CNP"|"LatentNP"|"AttentiveNP"|"InContextRegressor", "config": {...}, "state_dict": {...}}``;
chapters rebuild the model with ``CNP(**config)`` and load it. The config records the decoder's
std floor ``min_std`` (absent in the chapter-04 checkpoints: they use the default 0.1 they were
trained with). The chapter-04 models train on the default ``GPCurves()`` (3-20 context points);
the chapter-09 models on the same kernel with 1-40 context points (``--min-context/--max-context``).

Prints the training time (wall and CPU seconds: noisy on a shared machine) and the held-out
log-likelihood per target point at 1/3/10/20/40 context points (1,000 tasks each, 20 extra targets,
95% CIs; the gap is oracle minus model, its CI paired over tasks), next to the exact GP oracle's.
With ``--budget-minutes`` training stops at that wall time, with ``--budget-cpu-minutes`` at that
much CPU time of the process (on a shared machine a wall budget buys a varying amount of
training); the cosine learning-rate schedule follows whichever of steps or time ends the run first.
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

from metalearn_lite.algorithms import CNP, AttentiveNP, InContextRegressor, LatentNP  # noqa: E402
from metalearn_lite.reproducibility import seed_everything  # noqa: E402
from metalearn_lite.tasks import GPCurves  # noqa: E402
from metalearn_lite.training import mean_confidence_interval, meta_train, save_checkpoint  # noqa: E402

from metalearn_lite.checkpoints import SHIPPED_DIR as CHECKPOINTS  # noqa: E402  (the shipped folder, defined once)
NAMES = {"cnp": ("CNP", "cnp_gp.pt"), "latent_np": ("LatentNP", "latent_np_gp.pt"),
         "attentive_np": ("AttentiveNP", "attentive_np_gp.pt"), "transformer": ("InContextRegressor", "transformer_gp.pt")}
CLASSES = {"CNP": CNP, "LatentNP": LatentNP, "AttentiveNP": AttentiveNP, "InContextRegressor": InContextRegressor}
LABELS = {"cnp": "CNP", "latent_np": "latent NP", "attentive_np": "attentive NP", "transformer": "transformer"}
EVAL_SEED = 2024
CONTEXT_SIZES = (1, 3, 10, 20, 40)
EXTRA_TARGETS = 20
NEW_KINDS = ("attentive_np", "transformer")   # chapter 09's: floor 1e-3, 1-40 context points by default


def build(kind: str, hidden: int, min_std: float | None = None) -> tuple[torch.nn.Module, dict]:
    if kind == "cnp":
        config = {"hidden": hidden, "r_dim": hidden}
    elif kind == "latent_np":
        config = {"hidden": hidden, "r_dim": hidden, "z_dim": hidden // 2}
    elif kind == "attentive_np":   # an attentive CNP (chapter 07's AttentiveNP without the latent path)
        config = {"hidden": hidden, "r_dim": hidden, "num_heads": 8, "latent_path": False}
    else:
        config = {"d_model": hidden // 2, "num_heads": 4, "num_layers": 4, "dim_feedforward": hidden}
    if min_std is not None:
        config["min_std"] = min_std
    return CLASSES[NAMES[kind][0]](**config), config


def load_shipped(kind: str, folder: Path = CHECKPOINTS) -> torch.nn.Module | None:
    """The shipped model of this kind rebuilt from its checkpoint, or ``None`` if absent."""
    from metalearn_lite.training import load_checkpoint
    path = folder / NAMES[kind][1]
    if not path.exists():
        return None
    state = load_checkpoint(path)
    model = CLASSES[state["model"]](**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def model_log_likelihood(model: torch.nn.Module, episode) -> torch.Tensor:
    """Per-target-point log-likelihood ``[B]`` (64 draws of z for a latent model)."""
    gen = torch.Generator().manual_seed(0)
    latent = isinstance(model, LatentNP) or getattr(model, "latent_path", False)
    if latent:
        return model.log_likelihood(episode, num_samples=64, generator=gen)
    return model.log_likelihood(episode)


def context_table(models: dict, gp: GPCurves, num_tasks: int, sizes=CONTEXT_SIZES, chunk: int = 250) -> dict:
    """``{n_c: {"oracle": (mean, ci), name: (mean, ci, gap, gap_ci)}}`` on ``num_tasks`` seeded tasks per size."""
    table = {}
    for n_c in sizes:
        episode = gp.sample(num_tasks, num_context=n_c, num_extra_targets=EXTRA_TARGETS, generator=EVAL_SEED + n_c)
        oracle = gp.log_likelihood(episode)
        o = mean_confidence_interval(oracle.tolist())
        row = {"oracle": (round(o.mean, 4), round(o.ci95, 4))}
        for name, model in models.items():
            with torch.no_grad():
                ll = torch.cat([model_log_likelihood(model, _slice(episode, i, chunk))
                                for i in range(0, num_tasks, chunk)])
            m = mean_confidence_interval(ll.tolist())
            g = mean_confidence_interval((oracle - ll).tolist())
            row[name] = (round(m.mean, 4), round(m.ci95, 4), round(g.mean, 4), round(g.ci95, 4))
        table[n_c] = row
    return table


def _slice(episode, start: int, size: int):
    from metalearn_lite import Episode
    return Episode(*(t[start:start + size] for t in episode.tensors()), batched=True)


def print_table(table: dict, names: list[str]) -> None:
    sizes = list(table)
    print("| log-likelihood per target (gap = oracle - model) | " + " | ".join(str(n) for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    print("| GP oracle | " + " | ".join(f"{table[n]['oracle'][0]:.2f} +/- {table[n]['oracle'][1]:.2f}"
                                       for n in sizes) + " |")
    for name in names:
        print(f"| {name} | " + " | ".join(f"{table[n][name][0]:.2f} ({table[n][name][2]:.2f} +/- {table[n][name][3]:.2f})"
                                       for n in sizes) + " |")


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


class _BudgetReached(Exception):
    pass


def train(kind: str, args: argparse.Namespace, out: Path) -> None:
    seed_everything(args.seed, num_threads=args.threads)
    new = kind in NEW_KINDS
    context = (args.min_context or (1 if new else GPCurves.min_context),
               args.max_context or (40 if new else GPCurves.max_context))
    gp = GPCurves(min_context=context[0], max_context=context[1])
    min_std = args.min_std if args.min_std is not None else (1e-3 if new else None)
    model, config = build(kind, args.hidden, min_std)
    lr = args.lr if args.lr is not None else (5e-4 if kind == "transformer" else 1e-3)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(args.seed)
    budget_s = 60 * args.budget_minutes if args.budget_minutes else math.inf
    start, cpu_start = time.perf_counter(), time.process_time()
    cpu_budget_s = 60 * args.budget_cpu_minutes if args.budget_cpu_minutes else math.inf
    steps_done = [0]

    def step_fn(step: int):
        progress = max(step / max(args.steps, 1), (time.perf_counter() - start) / budget_s,
                       (time.process_time() - cpu_start) / cpu_budget_s)
        if progress >= 1:
            raise _BudgetReached
        for group in optimiser.param_groups:   # cosine from lr to lr / 10
            group["lr"] = lr / 10 + 0.45 * lr * (1 + math.cos(math.pi * progress))
        steps_done[0] = step + 1
        return model.loss(gp.sample(args.batch, generator=gen)).loss

    from metalearn_lite.training.history import History
    history = History()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        meta_train(step_fn, optimiser, args.steps, log_every=50, description=f"training {kind}", grad_clip=10.0,
                   history=history)
    except _BudgetReached:
        print(f"budget ({args.budget_minutes} wall-min / {args.budget_cpu_minutes} CPU-min) reached after {steps_done[0]} steps")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.eval()
    figures = held_out(model, GPCurves(), args.eval_tasks)
    by_context = context_table({kind: model}, GPCurves(), args.eval_tasks)
    _, filename = NAMES[kind]
    metadata = {"command": args.command,
                "config": config, "steps": steps_done[0], "batch": args.batch, "lr": lr, "seed": args.seed,
                "train_context": list(context), "budget_minutes": args.budget_minutes,
                "budget_cpu_minutes": args.budget_cpu_minutes,
                "final_loss": round(history.last("loss", 10), 4), "held_out": figures,
                "held_out_by_context": {str(n): {"model_ll": r[kind][0], "model_ll_ci95": r[kind][1],
                                                 "oracle_ll": r["oracle"][0], "gap": r[kind][2], "gap_ci95": r[kind][3]}
                                        for n, r in by_context.items()},
                "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1), "torch": torch.__version__}
    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    digest = save_checkpoint(path, model, metadata, config=config)  # {model, config, state_dict}
    print(f"command: {metadata['command']}")
    print(f"{kind}: {steps_done[0]} steps of {args.batch} tasks in {wall:.1f} s wall / {cpu:.1f} s CPU "
          f"({1000 * wall / max(steps_done[0], 1):.1f} ms/step; shared machine, noisy)")
    print(f"  held-out log-lik per target point ({figures['num_tasks']} tasks, {figures['num_context']} context): "
          f"{kind} {figures['model_ll']:.3f} +/- {figures['model_ll_ci95']:.3f}, "
          f"GP oracle {figures['oracle_ll']:.3f} +/- {figures['oracle_ll_ci95']:.3f}, "
          f"gap {figures['oracle_ll'] - figures['model_ll']:.3f}")
    print_table(by_context, [kind])
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
          f"({path.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}...)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[*NAMES, "both"], default="both",
                        help="'both' = cnp and latent_np (chapter 04)")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=None, help="default 1e-3 (5e-4 for the transformer)")
    parser.add_argument("--min-std", type=float, default=None,
                        help="decoder std floor; default 0.1 for cnp/latent_np, 1e-3 for the others")
    parser.add_argument("--min-context", type=int, default=None)
    parser.add_argument("--max-context", type=int, default=None)
    parser.add_argument("--budget-minutes", type=float, default=None, help="stop training at this wall time")
    parser.add_argument("--budget-cpu-minutes", type=float, default=None,
                        help="stop training after this much CPU time of this process (fairer on a shared machine)")
    parser.add_argument("--table", action="store_true",
                        help="evaluate every shipped model at 1/3/10/20/40 context points and print the table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-tasks", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=CHECKPOINTS)
    args = parser.parse_args(argv)
    args.command = "python " + " ".join(shlex.quote(a) for a in ["bench/train_np.py",
                                                                  *(sys.argv[1:] if argv is None else argv)])
    if args.table:
        seed_everything(args.seed, num_threads=args.threads)
        models = {LABELS[k]: m for k in NAMES if (m := load_shipped(k, args.out)) is not None}
        print(f"command: {args.command}")
        wall = time.perf_counter()
        table = context_table(models, GPCurves(), args.eval_tasks)
        print(f"{args.eval_tasks} tasks per context size, {EXTRA_TARGETS} extra targets, default GPCurves(); "
              f"model (gap +/- 95% CI), {time.perf_counter() - wall:.0f} s")
        print_table(table, list(models))
        return
    for kind in (["cnp", "latent_np"] if args.model == "both" else [args.model]):
        train(kind, args, args.out)


if __name__ == "__main__":
    main()
