"""Prototype explorer (chapter 03): where a prototypical network puts an episode.

Shows a 2-D projection of the support and query embeddings ``f_phi(x)`` of one episode,
with the class prototypes ``c_n`` and the regions of the plane nearest to each projected
prototype. Sliders change the number of ways ``N`` and shots ``K``; a button draws a new
episode. Nothing is trained here: the widget takes an already-trained ``ProtoNet``.

How the picture is made (and what it is not):

- the episode goes through :func:`metalearn_lite.algorithms.protonet_episode` (support and
  query embedded together, as in training), so accuracy and predictions are the model's;
- the projection is PCA fitted on this episode's embeddings (support and query): centre
  them, take the top two right singular vectors ``V_2`` of the centred matrix, and plot
  ``(z - mean) V_2``. Prototypes are projected the same way (the mean commutes with it);
- the coloured regions are "nearest projected prototype in the plane", an *approximation*
  of the model's decision rule, which uses all ``D`` dimensions. The plot title says so,
  and each query point's marker edge is coloured by the model's *true* prediction; a red
  cross marks a query the model gets wrong. ``last_state["projection_agreement"]`` is the
  fraction of queries on which the 2-D rule and the model agree.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor

from ..algorithms.protonet import ProtoNet, protonet_episode
from ..data.episodes import EpisodeSampler
from .base import CourseWidget

__all__ = ["PrototypeExplorer", "pca_2d"]


def pca_2d(z: Tensor) -> tuple[Tensor, Tensor, float]:
    """Fit a 2-D PCA on ``z [n, D]``.

    Returns ``(mean [D], components [D, 2], explained)`` where ``explained`` is the fraction
    of the total variance the two components keep; project with ``(x - mean) @ components``.
    Uses an exact SVD (``torch.linalg.svd``): episodes hold at most a few hundred points.
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"z must be [n >= 2, D], got {list(z.shape)}")
    z = z.detach().to(torch.float64)
    mean = z.mean(0)
    centred = z - mean
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:2].T                                             # [D, <=2]
    if components.shape[1] < 2:                                       # D == 1: pad a zero axis
        components = torch.cat([components, torch.zeros_like(components)], dim=1)
    total = float((s ** 2).sum())
    explained = float((s[:2] ** 2).sum()) / total if total > 0 else 1.0
    # Fix the sign of each axis (largest-magnitude loading positive) so re-draws do not flip.
    signs = torch.sign(components.gather(0, components.abs().argmax(0, keepdim=True)))
    signs[signs == 0] = 1
    return mean, components * signs, explained


class PrototypeExplorer(CourseWidget):
    """Episodes of ``data`` as a trained ProtoNet sees them, in 2-D.

    Args:
        protonet: a trained :class:`~metalearn_lite.algorithms.ProtoNet` (its encoder maps
            ``[n, C, H, W]`` to ``[n, D]``); used in ``eval`` mode under ``no_grad``.
        data: anything :class:`~metalearn_lite.data.EpisodeSampler` accepts (``Glyphs``,
            ``Omniglot``, or a dense tensor ``[num_classes, num_per_class, C, H, W]``),
            usually the *evaluation* split (classes never seen in training).
        num_ways, num_shots: initial ``N`` and ``K`` (sliders ``2..max_ways``, ``1..max_shots``).
        num_queries: ``Q`` query examples per class.
        seed: the first episode's seed; "new episode" adds one.
        grid_size: resolution of the decision-region grid.

    Controls: ``ways`` and ``shots`` (``IntSlider``), ``resample`` (``Button``),
    ``regions`` (``Checkbox``). ``last_state`` holds: ``num_ways``, ``num_shots``,
    ``num_queries``, ``episode_seed``, ``accuracy`` (the model's query accuracy),
    ``predictions`` and ``query_y`` (lists), ``projection_agreement``, ``explained_variance``,
    ``support_2d`` ``[N*K, 2]``, ``query_2d`` ``[N*Q, 2]``, ``prototypes_2d`` ``[N, 2]``
    (lists), ``distance``.
    """

    def __init__(self, protonet: ProtoNet, data: Any, num_ways: int = 5, num_shots: int = 1,
                 num_queries: int = 5, seed: int = 0, max_ways: int = 10, max_shots: int = 10,
                 grid_size: int = 150):
        if not isinstance(protonet, ProtoNet):
            raise TypeError(f"protonet must be a metalearn_lite ProtoNet, got {type(protonet).__name__}")
        if not isinstance(data, Tensor) and hasattr(data, "class_images"):
            data = data.class_images()  # once: the sliders then re-sample from the dense tensor
        self.protonet = protonet
        self.data = data
        self.num_queries = int(num_queries)
        self.episode_seed = int(seed)
        self.grid_size = int(grid_size)
        # Validate the starting point (and the data) with the sampler's own messages.
        probe = EpisodeSampler(data, num_ways, num_shots, num_queries, seed=seed)
        num_classes = probe.num_classes
        per_class = min(probe.class_sizes)
        max_ways = max(2, min(max_ways, num_classes))
        max_shots = max(1, min(max_shots, per_class - self.num_queries))
        if num_ways > max_ways or num_shots > max_shots:
            raise ValueError(f"num_ways must be <= {max_ways} and num_shots <= {max_shots} for this data "
                             f"and max_ways/max_shots, got num_ways={num_ways}, num_shots={num_shots}")
        style = {"description_width": "initial"}
        self.ways = widgets.IntSlider(value=num_ways, min=2, max=max_ways, description="ways N",
                                      continuous_update=False, style=style)
        self.shots = widgets.IntSlider(value=num_shots, min=1, max=max_shots, description="shots K",
                                       continuous_update=False, style=style)
        self.regions = widgets.Checkbox(value=True, description="decision regions (2-D approx.)", indent=False)
        self.resample = widgets.Button(description="new episode", icon="refresh")
        self.resample.on_click(self._on_resample)
        controls = [widgets.HBox([self.ways, self.shots]), widgets.HBox([self.resample, self.regions])]
        super().__init__(controls)
        for control in (self.ways, self.shots, self.regions):
            control.observe(self.refresh, names="value")
        self.refresh()

    # ------------------------------------------------------------------ events
    def _on_resample(self, _button=None) -> None:
        self.episode_seed += 1
        self.refresh()

    # ------------------------------------------------------------------ model
    def episode(self):
        """The current episode (deterministic for ways, shots, queries and ``episode_seed``)."""
        sampler = EpisodeSampler(self.data, int(self.ways.value), int(self.shots.value), self.num_queries,
                                 seed=self.episode_seed)
        return sampler.sample()

    def compute(self) -> dict:
        """Run the model on the current episode; return embeddings, prototypes and predictions."""
        episode = self.episode()
        captured: dict[str, Tensor] = {}

        def embed(x: Tensor) -> Tensor:
            z = self.protonet.embed(x)
            captured["z"] = z
            return z

        was_training = self.protonet.training
        self.protonet.eval()
        try:
            with torch.no_grad():
                result = protonet_episode(embed, episode, self.protonet.distance, self.protonet.cosine_scale)
        finally:
            self.protonet.train(was_training)
        z = captured["z"]
        num_support = episode.support_x.shape[0]
        return {"episode": episode, "support_z": z[:num_support], "query_z": z[num_support:],
                "prototypes": result.prototypes, "logits": result.logits,
                "predictions": result.logits.argmax(-1), "accuracy": float(result.accuracy)}

    # ------------------------------------------------------------------ drawing
    def draw(self) -> Figure:
        out = self.compute()
        episode = out["episode"]
        n = episode.num_ways
        mean, components, explained = pca_2d(torch.cat([out["support_z"], out["query_z"]]))

        def project(z: Tensor) -> np.ndarray:
            return ((z.detach().to(torch.float64) - mean) @ components).numpy()

        s2, q2, c2 = project(out["support_z"]), project(out["query_z"]), project(out["prototypes"])
        support_y = episode.support_y.numpy()
        query_y = episode.query_y.numpy()
        predictions = out["predictions"].numpy()
        nearest_2d = ((q2[:, None, :] - c2[None]) ** 2).sum(-1).argmin(-1)
        agreement = float((nearest_2d == predictions).mean())

        colours = plt.get_cmap("tab10" if n <= 10 else "tab20")(np.arange(n) % (10 if n <= 10 else 20))
        fig, ax = plt.subplots(figsize=(6.4, 5.4))
        points = np.concatenate([s2, q2, c2])
        lo, hi = points.min(0), points.max(0)
        pad = 0.12 * np.maximum(hi - lo, 1e-6)
        lo, hi = lo - pad, hi + pad
        if self.regions.value:
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], self.grid_size), np.linspace(lo[1], hi[1], self.grid_size))
            grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
            region = ((grid[:, None, :] - c2[None]) ** 2).sum(-1).argmin(-1).reshape(gx.shape)
            ax.imshow(region, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap=ListedColormap(colours),
                      vmin=-0.5, vmax=n - 0.5, alpha=0.18, aspect="auto", interpolation="nearest")
        ax.scatter(s2[:, 0], s2[:, 1], c=colours[support_y], marker="o", s=55, edgecolors="black",
                   linewidths=0.6, label="support", zorder=3)
        ax.scatter(q2[:, 0], q2[:, 1], c=colours[query_y], marker="^", s=45, edgecolors=colours[predictions],
                   linewidths=1.6, label="query (edge = model's prediction)", zorder=3)
        wrong = predictions != query_y
        if wrong.any():
            ax.scatter(q2[wrong, 0], q2[wrong, 1], marker="x", c="red", s=70, linewidths=1.8,
                       label="query misclassified", zorder=4)
        ax.scatter(c2[:, 0], c2[:, 1], c=colours, marker="*", s=380, edgecolors="black", linewidths=1.2,
                   label="prototype $c_n$", zorder=5)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel("PCA axis 1 of the episode's embeddings")
        ax.set_ylabel("PCA axis 2")
        regions_note = "regions: nearest prototype in 2-D (approximation)" if self.regions.value else "regions off"
        ax.set_title(f"{n}-way {episode.num_shots}-shot: model accuracy {out['accuracy']:.0%} "
                     f"(all {out['support_z'].shape[-1]} dims)\n{regions_note}; 2-D rule agrees on "
                     f"{agreement:.0%} of queries; PCA keeps {explained:.0%} of variance", fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        self.last_state = {
            "num_ways": n, "num_shots": episode.num_shots, "num_queries": episode.num_queries,
            "episode_seed": self.episode_seed, "distance": self.protonet.distance,
            "accuracy": out["accuracy"], "predictions": predictions.tolist(), "query_y": query_y.tolist(),
            "projection_agreement": agreement, "explained_variance": explained,
            "support_2d": s2.tolist(), "query_2d": q2.tolist(), "prototypes_2d": c2.tolist(),
            "regions": bool(self.regions.value),
        }
        return fig
