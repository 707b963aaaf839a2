"""Reproduce the MAML paper's sinusoid result (Finn et al., 2017, section 5.1, figure 2).

MAML as in the paper: MLP 1-40-40-1 (ReLU), one inner step with alpha = 0.01 during
meta-training, K = 5 (or 10) support points per task, meta-batch 25, Adam with
beta = 1e-3, 70,000 meta-steps, second-order meta-gradients. The baseline is one MLP
"pretrained" on all tasks pooled (the average function), then fine-tuned.

Test: >= 600 new tasks, K = 5 support points, gradient descent with alpha = 0.01 on the
support set from each initialisation, mean squared error on 100 query points per task
after 0..10 steps. Printed with 95% confidence intervals next to the paper's figures
(MAML 0.67 / 0.38 / 0.35, pretrained 2.41 / 2.23 / 2.19 after 1 / 5 / 10 steps; the
paper's numbers are read from its figure 2 and its text, no CIs given).

    python bench/reproduce_sinusoid.py                      # the paper's 70,000 steps
    python bench/reproduce_sinusoid.py --steps 20000 --max-minutes 60 \\
        --save metalearn_lite/checkpoints/maml_sinusoid.pt
    python bench/reproduce_sinusoid.py --quick               # a smoke run (~1 minute)
    python bench/reproduce_sinusoid.py --steps 49306 \\
        --snapshots metalearn_lite/checkpoints/maml_sinusoid_snapshots.pt   # the player's replay

``--max-minutes`` stops meta-training early (the steps actually run are printed and saved
with the checkpoint's record, so ``--steps <that number>`` reproduces the run). With
``--save`` the MAML and pretrained parameters go to one small checkpoint (``save_checkpoint``:
atomic, with a SHA-256 record of the exact command and the table: its entry in
``metalearn_lite/checkpoints/registry.json`` when saved into the shipped folder, a sidecar
``.json`` beside the file anywhere else).
With ``--snapshots PATH`` the MAML parameters theta are also saved at log-spaced meta-steps
(``snapshot_steps``: 0, 1, 2, 3, 5, 7, 10, ..., the last step), rewritten atomically after each
one so that a stopped run still leaves the snapshots it reached; the outer-loop player
(``metalearn_lite.widgets.maml``) replays them. Saving snapshots only copies tensors: the
random stream, and so the trained model, is the same with or without it.
Timings on the shared 2-core course machine are noisy; the script prints meta-steps/s.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm.auto import tqdm

from metalearn_lite.algorithms import MAML, pretraining_loss
from metalearn_lite.models import MLP
from metalearn_lite.reproducibility import seed_everything
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.training import mean_confidence_interval, save_checkpoint
from metalearn_lite.training.snapshots import save_snapshots

PAPER = {"maml": {1: 0.67, 5: 0.38, 10: 0.35}, "pretrained": {1: 2.41, 5: 2.23, 10: 2.19}}
REPORT_STEPS = (1, 5, 10)


def snapshot_steps(total: int, per_decade: int = 6) -> list[int]:
    """Meta-steps at which ``--snapshots`` saves theta: 0, ``per_decade`` log-spaced steps per
    factor of ten (rounded, duplicates dropped), and ``total``."""
    if total < 0 or per_decade < 1:
        raise ValueError(f"expected total >= 0 and per_decade >= 1, got {total}, {per_decade}")
    steps = {0, total}
    if total >= 1:
        for i in range(int(per_decade * math.log10(total)) + 1):
            steps.add(min(total, round(10 ** (i / per_decade))))
    return sorted(steps)


def mse_after_steps(model: torch.nn.Module, params: dict[str, torch.Tensor], support_x, support_y, query_x, query_y,
                    inner_lr: float, max_steps: int) -> torch.Tensor:
    """Query MSE of each task after 0..max_steps inner steps: ``[B, max_steps + 1]``.

    ``support_x/support_y: [B, K, 1]``, ``query_x/query_y: [B, Q, 1]``. Batched over tasks
    with ``torch.vmap``; the same update as ``metalearn_lite.algorithms.inner_loop``.
    """
    params = {k: v.detach() for k, v in params.items()}

    def one_task(sx, sy, qx, qy):
        def support_loss(theta):
            return F.mse_loss(functional_call(model, theta, (sx,)), sy)

        theta, losses = dict(params), []
        for step in range(max_steps + 1):
            losses.append(F.mse_loss(functional_call(model, theta, (qx,)), qy))
            if step < max_steps:
                grads = torch.func.grad(support_loss)(theta)
                theta = {k: theta[k] - inner_lr * grads[k] for k in theta}
        return torch.stack(losses)

    return torch.vmap(one_task)(support_x, support_y, query_x, query_y).detach()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=70_000, help="MAML meta-steps (paper: 70,000)")
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help="pretraining steps for the baseline (default: same as --steps, at most 20,000)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop meta-training after this long")
    parser.add_argument("--num-shots", type=int, default=5, help="K in training and test (paper: 5 or 10)")
    parser.add_argument("--meta-batch", type=int, default=25)
    parser.add_argument("--inner-lr", type=float, default=0.01, help="alpha")
    parser.add_argument("--outer-lr", type=float, default=1e-3, help="beta (Adam)")
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--num-test-tasks", type=int, default=600)
    parser.add_argument("--num-test-queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", default=None, help="write the MAML + pretrained checkpoint here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 steps, 600 test tasks")
    parser.add_argument("--snapshots", default=None,
                        help="also save theta at log-spaced meta-steps here (the outer-loop player's replay)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.pretrain_steps = 500, 500
    pretrain_steps = args.pretrain_steps if args.pretrain_steps is not None else min(args.steps, 20_000)
    command = "python bench/reproduce_sinusoid.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    seed_everything(args.seed, num_threads=args.threads)
    tasks = SinusoidTasks()
    gen = torch.Generator().manual_seed(args.seed)
    K = args.num_shots

    # --- MAML -----------------------------------------------------------------------
    maml = MAML(MLP(1, (40, 40), 1), F.mse_loss, inner_lr=args.inner_lr, num_inner_steps=1,
                first_order=args.first_order)
    opt = torch.optim.Adam(maml.parameters(), lr=args.outer_lr)
    start = time.perf_counter()
    steps_done = 0
    wanted = set(snapshot_steps(args.steps)) if args.snapshots else set()
    snaps: dict[int, dict[str, torch.Tensor]] = {}
    snap_losses: dict[int, float] = {}

    def take_snapshot(step: int, loss: float | None) -> None:
        snaps[step] = {k: v.detach().clone() for k, v in maml.model.state_dict().items()}
        snap_losses[step] = float("nan") if loss is None else loss
        order = sorted(snaps)
        save_snapshots(args.snapshots, order, [snaps[s] for s in order], [snap_losses[s] for s in order],
                       config={"in_features": 1, "hidden_sizes": [40, 40], "out_features": 1},
                       run={"inner_lr": args.inner_lr, "num_shots": K, "meta_batch": args.meta_batch,
                            "outer_lr": args.outer_lr, "seed": args.seed, "first_order": args.first_order,
                            "planned_steps": args.steps},
                       metadata={"command": command, "snapshot_steps": order, "planned_steps": args.steps,
                                 "complete": order[-1] == args.steps,
                                 "meta_loss": "the meta-training loss of the batch that produced each snapshot "
                                              "(NaN at step 0)",
                                 "torch": torch.__version__},
                       data="sinusoid tasks (metalearn_lite.tasks.SinusoidTasks: synthetic, amplitude 0.1-5, "
                            "phase 0-pi, x in [-5, 5])",
                       licence="synthetic data generated by the package (MIT): no third-party data",
                       recreate=f"python bench/reproduce_sinusoid.py --steps {args.steps} --seed {args.seed} "
                                f"--num-shots {K} --threads {args.threads} --snapshots {args.snapshots}")

    if 0 in wanted:
        take_snapshot(0, None)
    bar = tqdm(range(args.steps), desc="MAML meta-training", mininterval=5)
    for step in bar:
        batch = tasks.sample(args.meta_batch, K, K, generator=gen)
        loss = maml.meta_loss(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps_done = step + 1
        if steps_done in wanted:
            take_snapshot(steps_done, loss.item())
        if step % 500 == 0:
            bar.set_postfix(meta_loss=f"{loss.item():.3f}")
        if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
            break
    bar.close()
    train_seconds = time.perf_counter() - start
    if args.snapshots and steps_done not in snaps:
        take_snapshot(steps_done, loss.item())  # a --max-minutes stop: keep the last theta too
    if args.snapshots:
        print(f"snapshots of theta at {len(snaps)} meta-steps ({min(snaps)}..{max(snaps)}) -> {args.snapshots}")

    # --- pretrained baseline ----------------------------------------------------------
    pretrained = MLP(1, (40, 40), 1)
    opt = torch.optim.Adam(pretrained.parameters(), lr=args.outer_lr)
    for _ in tqdm(range(pretrain_steps), desc="pretraining baseline", mininterval=5):
        batch = tasks.sample(args.meta_batch, K, K, generator=gen)
        loss = pretraining_loss(pretrained, batch, F.mse_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # --- test ---------------------------------------------------------------------------
    test = tasks.sample(args.num_test_tasks, K, args.num_test_queries, generator=10_000 + args.seed)
    curves = {
        "maml": mse_after_steps(maml.model, maml.params(), *test.tensors(), inner_lr=args.inner_lr, max_steps=10),
        "pretrained": mse_after_steps(pretrained, dict(pretrained.named_parameters()), *test.tensors(),
                                      inner_lr=args.inner_lr, max_steps=10),
    }
    table = {name: {s: mean_confidence_interval(curve[:, s].tolist()) for s in (0, *REPORT_STEPS)}
             for name, curve in curves.items()}

    print(f"\ncommand: {command}")
    print(f"MAML meta-steps run: {steps_done} of {args.steps} in {train_seconds:.0f} s "
          f"({steps_done / max(train_seconds, 1e-9):.1f} meta-steps/s, shared noisy CPU, {args.threads} thread(s)); "
          f"pretraining steps: {pretrain_steps}")
    print(f"K={K}, meta-batch {args.meta_batch}, alpha={args.inner_lr}, beta={args.outer_lr}, "
          f"{'first' if args.first_order else 'second'} order; test: {args.num_test_tasks} tasks x "
          f"{args.num_test_queries} query points, alpha={args.inner_lr}")
    print(f"\n{'model':<11}{'steps':>6}  {'MSE (95% CI)':>22}  {'paper':>6}")
    for name in ("maml", "pretrained"):
        for s in (0, *REPORT_STEPS):
            r = table[name][s]
            paper = f"{PAPER[name][s]:.2f}" if s in PAPER[name] else "-"
            print(f"{name:<11}{s:>6}  {r.mean:>12.3f} +/- {r.ci95:.3f}  {paper:>6}")

    if args.save:
        state = {
            "maml": {k: v.detach().clone() for k, v in maml.model.state_dict().items()},
            "pretrained": {k: v.detach().clone() for k, v in pretrained.state_dict().items()},
            "config": {"hidden_sizes": [40, 40], "inner_lr": args.inner_lr, "num_shots": K,
                       "meta_steps": steps_done, "pretrain_steps": pretrain_steps},
        }
        metadata = {
            "command": command,
            "reproduce_with": f"python bench/reproduce_sinusoid.py --steps {steps_done} --seed {args.seed} "
                              f"--num-shots {K} --threads {args.threads}",
            "meta_steps": steps_done,
            "mse": {name: {str(s): [round(r.mean, 4), round(r.ci95, 4)] for s, r in rows.items()}
                    for name, rows in table.items()},
            "torch": torch.__version__,
        }
        digest = save_checkpoint(args.save, state, metadata)
        print(f"\nsaved {args.save} (sha256 {digest[:16]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
