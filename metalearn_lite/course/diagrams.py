"""Diagrams drawn by the chapters (matplotlib only, no data): chapter 02's MAML graph.

``maml_computation_graph()`` draws one task's part of MAML's computation graph with one
inner step, in the symbols of chapter 02 and of the code: theta (``params``), the inner
step with ``inner_lr`` alpha on the support set, the adapted parameters phi_i (theta'_i in
the equations, ``inner_loop(...).params`` in the code), the query loss and the outer step
with ``outer_lr`` beta. Below it, the backward pass: the query gradient g_i flows back to
theta along two paths, since d phi_i / d theta = I - alpha * Hessian. The identity path is
all that first-order MAML keeps; the Hessian path exists only when the inner gradient was
taken with ``create_graph=True`` (second order).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["maml_computation_graph"]

FORWARD, IDENTITY, HESSIAN = "black", "tab:blue", "tab:red"


def _box(ax, x, y, text, *, width, height=0.62, colour="white", edge="black", size=10):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.04",
                                facecolor=colour, edgecolor=edge, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, start, end, *, colour=FORWARD, style="-", rad=0.0, lw=1.6):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=colour, lw=lw,
                                 linestyle=style, connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))


def maml_computation_graph() -> Figure:
    """One task's forward graph (top) and the meta-gradient's two paths back to theta (bottom)."""
    fig, ax = plt.subplots(figsize=(12, 5.2))
    ax.set(xlim=(0, 12), ylim=(-0.35, 5.0))
    ax.axis("off")

    # ---- forward: theta -> inner step (support) -> phi_i -> query loss (query) -> meta-loss
    y = 3.4
    _box(ax, 0.8, y, r"$\theta$" + "\n(params)", width=1.1, colour="#eeeeee")
    _box(ax, 3.35, y, r"inner step ($\alpha$ = inner_lr)" + "\n" + r"$\phi_i = \theta - \alpha\,\nabla_\theta \mathcal{L}_{S_i}(\theta)$",
         width=3.2, height=0.8)
    _box(ax, 3.35, 4.55, r"support set $S_i$ (K points)", width=2.6, height=0.45, colour="#f6f6ff", size=9)
    _box(ax, 6.1, y, r"$\phi_i$" + "\n" + r"(= $\theta'_i$, adapted)", width=1.5, colour="#eeeeee")
    _box(ax, 8.3, y, r"query loss" + "\n" + r"$\mathcal{L}_{Q_i}(\phi_i)$", width=1.9)
    _box(ax, 8.3, 4.55, r"query set $Q_i$", width=1.7, height=0.45, colour="#f6f6ff", size=9)
    _box(ax, 10.75, y, r"$\mathcal{L}_\mathrm{meta} = \frac{1}{B}\sum_i \mathcal{L}_{Q_i}(\phi_i)$", width=2.3,
         height=0.7)
    for a, b in [((1.35, y), (1.75, y)), ((4.95, y), (5.35, y)), ((6.85, y), (7.35, y)), ((9.25, y), (9.6, y)),
                 ((3.35, 4.32), (3.35, 3.8)), ((8.3, 4.32), (8.3, 3.71))]:
        _arrow(ax, a, b)
    _arrow(ax, (0.8, y + 0.31), (1.9, y + 0.3), rad=-0.35, lw=1.2)   # theta also enters the gradient term
    ax.text(10.75, 4.55, "forward: one task $i$\nof the meta-batch", ha="center", va="center", fontsize=9,
            style="italic")

    # ---- backward: g_i = grad of the query loss at phi_i, then d phi_i / d theta = I - alpha H
    ax.text(6.6, 2.6, r"backward: $\nabla_\theta \mathcal{L}_{Q_i}(\phi_i) = "
                      r"(\partial \phi_i / \partial \theta)^\top g_i = "
                      r"(I - \alpha\,\nabla^2_\theta \mathcal{L}_{S_i}(\theta))\, g_i$",
            ha="center", fontsize=11)
    yb = 1.75
    _box(ax, 8.3, yb, r"$g_i = \nabla_\phi \mathcal{L}_{Q_i}(\phi_i)$", width=2.3, colour="#fff8e6")
    _box(ax, 0.95, 1.3, r"$\nabla_\theta \mathcal{L}_\mathrm{meta}$" + "\n(mean over tasks)",
         width=1.5, height=0.7, colour="#fff8e6")
    _arrow(ax, (8.3, y - 0.32), (8.3, yb + 0.33), colour="grey", lw=1.2)
    # identity path: phi_i = theta - ... contributes I g_i (kept by first and second order)
    _arrow(ax, (7.12, yb), (1.72, 1.5), colour=IDENTITY, lw=2.2)
    ax.text(4.4, 1.78, r"identity path: $I\,g_i$  (first and second order)", color=IDENTITY, ha="center",
            fontsize=10)
    # Hessian path: back through the inner step's gradient, a Hessian-vector product (second order only)
    _box(ax, 4.4, 0.7, r"through the inner step's gradient:" + "\n" +
         r"$-\alpha\,\nabla^2_\theta \mathcal{L}_{S_i}(\theta)\,g_i$  (a Hessian-vector product)",
         width=3.9, height=0.75, edge=HESSIAN, colour="#fff0f0", size=9.5)
    _arrow(ax, (7.4, yb - 0.32), (6.4, 0.85), colour=HESSIAN, style="--", lw=2.2)
    _arrow(ax, (2.4, 0.75), (1.72, 1.1), colour=HESSIAN, style="--", lw=2.2)
    ax.text(9.6, 0.72, "Hessian path: second order only.\nIt exists when the inner gradient kept\n"
                       "its graph (create_graph=True);\nfirst-order MAML (first_order=True)\ndrops it.",
            color=HESSIAN, ha="center", va="center", fontsize=9)
    ax.text(0.95, 0.8, r"outer step:" + "\n" + r"$\theta \leftarrow \theta - \beta\,\nabla_\theta "
                       r"\mathcal{L}_\mathrm{meta}$" + "\n" + r"($\beta$ = outer_lr)",
            ha="center", va="top", fontsize=9)
    fig.tight_layout()
    return fig
