"""Lake et al. (2015)'s one-shot protocol: N characters of *one* alphabet, two drawers.

In the one-shot classification task of Lake, Salakhutdinov & Tenenbaum (Science, 2015)
each episode takes 20 characters from a single alphabet; one drawer's rendering of each
character is the support set (one shot per class) and another drawer's renderings are the
queries. This is harder than the usual N-way K-shot episode (classes drawn from all
alphabets, shots and queries from any drawers): characters of one alphabet look alike, and
the query is always in another person's hand than its support.

:class:`WithinAlphabetSampler` draws such episodes from a dense ``[C, D, *x_shape]``
tensor whose second axis is the *drawer* (``Omniglot.class_images()`` keeps drawers
``_01 .. _20`` in that order, see :meth:`Omniglot.class_drawers`) and the alphabet of each
class. With ``num_shots = K`` and ``num_queries = Q`` it picks K + Q distinct drawers: the
first K draw every class's support, the other Q every class's queries, so support and query
never share a drawer. ``num_ways = 20, num_shots = 1, num_queries = 1`` is Lake's protocol.

:func:`held_out_alphabets` removes the alphabets a model was trained on (the two small
Omniglot background sets share Latin and Greek, so "train on one, test on the other" must
drop those from the test set).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ..tasks.episode import Episode

__all__ = ["WithinAlphabetSampler", "WithinAlphabetIndices", "held_out_alphabets", "plot_within_alphabet_episode"]


class WithinAlphabetIndices(NamedTuple):
    """One within-alphabet episode (all int64).

    ``alphabet``: scalar, the alphabet index; ``classes``: ``[N]`` the class of each label
    ``0..N-1``, all of that alphabet; ``support_drawers``: ``[K]`` and ``query_drawers``:
    ``[Q]`` positions on the drawer axis, disjoint (shared by every class of the episode).
    """

    alphabet: Tensor
    classes: Tensor
    support_drawers: Tensor
    query_drawers: Tensor


class WithinAlphabetSampler:
    """Sample N-way K-shot episodes whose classes share one alphabet and whose support and
    query come from different drawers.

    Args:
        class_images: ``[C, D, *x_shape]``, axis 1 the drawer (same drawer order in every class).
        class_alphabet: ``[C]`` alphabet index (or name) of each class.
        num_ways: N (20 in Lake et al.). Only alphabets with at least N classes are used.
        num_shots: K support drawers; num_queries: Q query drawers (K + Q <= D).
        seed: seed of the sampler's own ``torch.Generator``.

    :meth:`sample` returns an :class:`~metalearn_lite.Episode` shaped like
    :class:`~metalearn_lite.data.EpisodeSampler`'s: ``support_x [N*K, *x_shape]`` grouped by
    class, ``query_x [N*Q, *x_shape]``, labels ``0..N-1`` in a random order of the classes.
    Alphabets are drawn with equal probability (as in Lake's runs, one alphabet at a time).

    Raises:
        ValueError: no alphabet has N classes (names the largest), K + Q > D, or the
            shapes disagree.
    """

    def __init__(self, class_images: Tensor, class_alphabet: Sequence, num_ways: int = 20,
                 num_shots: int = 1, num_queries: int = 1, seed: int = 0) -> None:
        for name, value in (("num_ways", num_ways), ("num_shots", num_shots), ("num_queries", num_queries)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(class_images, Tensor) or class_images.dim() < 2:
            raise ValueError("class_images must be a tensor [num_classes, num_drawers, *x_shape], got "
                             f"{list(class_images.shape) if isinstance(class_images, Tensor) else type(class_images).__name__}")
        alphabets = list(class_alphabet)
        if len(alphabets) != class_images.shape[0]:
            raise ValueError(f"class_alphabet must name the alphabet of each of the {class_images.shape[0]} "
                             f"classes, got {len(alphabets)} entries")
        num_drawers = int(class_images.shape[1])
        if num_shots + num_queries > num_drawers:
            raise ValueError(f"{num_shots} support + {num_queries} query drawers need num_shots + num_queries "
                             f"<= {num_drawers} (the drawers per class)")
        self.num_ways, self.num_shots, self.num_queries = num_ways, num_shots, num_queries
        self.class_images = class_images
        self.num_drawers = num_drawers
        names = sorted(set(alphabets), key=str)
        members = {a: [c for c, b in enumerate(alphabets) if b == a] for a in names}
        self.alphabet_names = [a for a in names if len(members[a]) >= num_ways]
        if not self.alphabet_names:
            largest = max(names, key=lambda a: len(members[a]))
            raise ValueError(f"a {num_ways}-way within-alphabet episode needs an alphabet with at least "
                             f"{num_ways} classes; the largest, {largest!r}, has {len(members[largest])}")
        self.alphabet_classes = [torch.tensor(members[a], dtype=torch.int64) for a in self.alphabet_names]
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self, seed: int | None = None) -> None:
        """Restart the episode stream (of ``seed``, or of the seed given at construction)."""
        self.seed = self.seed if seed is None else seed
        self.generator.manual_seed(self.seed)

    def sample_indices(self) -> WithinAlphabetIndices:
        g = self.generator
        a = int(torch.randint(len(self.alphabet_classes), (1,), generator=g))
        members = self.alphabet_classes[a]
        classes = members[torch.randperm(len(members), generator=g)[: self.num_ways]]
        drawers = torch.randperm(self.num_drawers, generator=g)[: self.num_shots + self.num_queries]
        return WithinAlphabetIndices(torch.tensor(a), classes, drawers[: self.num_shots],
                                     drawers[self.num_shots:])

    def episode(self, indices: WithinAlphabetIndices) -> Episode:
        n, k, q = self.num_ways, self.num_shots, self.num_queries
        data = self.class_images
        support = data[indices.classes[:, None], indices.support_drawers[None, :]]   # [N, K, ...]
        query = data[indices.classes[:, None], indices.query_drawers[None, :]]       # [N, Q, ...]
        x_shape = data.shape[2:]
        return Episode(support.reshape(n * k, *x_shape).contiguous(),
                       torch.arange(n).repeat_interleave(k),
                       query.reshape(n * q, *x_shape).contiguous(),
                       torch.arange(n).repeat_interleave(q),
                       num_ways=n, num_shots=k, num_queries=q)

    def sample(self) -> Episode:
        """One episode: ``support_x [N*K, *x_shape]``, ``query_x [N*Q, *x_shape]``."""
        return self.episode(self.sample_indices())

    def __iter__(self):
        """An endless stream of single episodes (for :func:`~metalearn_lite.training.evaluate`)."""
        while True:
            yield self.sample()

    def __repr__(self) -> str:
        return (f"WithinAlphabetSampler({self.num_ways}-way {self.num_shots}-shot {self.num_queries}-query, "
                f"{len(self.alphabet_names)} alphabets with >= {self.num_ways} classes, "
                f"{self.num_drawers} drawers, seed={self.seed})")


def held_out_alphabets(test_alphabets: Sequence[str], seen: Sequence[str]) -> list[int]:
    """Indices of the test alphabets whose names are not in ``seen`` (the training alphabets).

    Example: ``small1`` (Korean, Latin, Balinese, Greek, Early_Aramaic) and ``small2``
    (Japanese_(katakana), Sanskrit, Latin, Greek, Tagalog) share Latin and Greek, so a model
    trained on ``small1`` is tested on katakana, Sanskrit and Tagalog only.
    """
    seen_set = {str(s) for s in seen}
    return [i for i, name in enumerate(test_alphabets) if str(name) not in seen_set]


def plot_within_alphabet_episode(episode=None, predictions: dict | None = None, title: str = "",
                                 missing: str = "real Omniglot not found: no picture", max_ways: int = 20):
    """A figure of a one-shot episode: row 1 the support (one drawer), row 2 the queries (another
    drawer), then one row per model in ``predictions`` (``{name: [N*Q] predicted labels}``) marking
    each query right (green) or wrong (red). Returns the figure.

    With ``episode=None`` it draws the same grid of empty axes with the ``missing`` message, so a
    notebook cell shows a figure of the same size and axes count either way (its text output,
    which nbval compares, is then identical with or without the data).
    """
    import matplotlib.pyplot as plt

    predictions = predictions or {}
    rows = 2 + len(predictions)
    fig, axes = plt.subplots(rows, max_ways, figsize=(max_ways * 0.6, rows * 0.75 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if episode is None:
        for ax in axes.flat:
            ax.axis("off")
        axes[rows // 2, 0].text(0, 0.5, missing, fontsize=10, transform=axes[rows // 2, 0].transAxes)
        fig.suptitle(title, fontsize=10)
        return fig
    n, q = episode.num_ways, episode.num_queries
    for col in range(max_ways):
        if col >= n:
            for ax in axes[:, col]:
                ax.axis("off")
            continue
        axes[0, col].imshow(episode.support_x[col * episode.num_shots, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        axes[1, col].imshow(episode.query_x[col * q, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        for r, (name, predicted) in enumerate(predictions.items(), start=2):
            ok = int(predicted[col * q]) == int(episode.query_y[col * q])
            axes[r, col].set_facecolor("#b7e4b0" if ok else "#f4b6b6")
            axes[r, col].text(0.5, 0.5, "\u2713" if ok else "\u2717", ha="center", va="center", fontsize=11,
                              transform=axes[r, col].transAxes)
    axes[0, 0].set_ylabel("support", fontsize=8)
    axes[1, 0].set_ylabel("query", fontsize=8)
    for r, name in enumerate(predictions, start=2):
        axes[r, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=10)
    return fig
