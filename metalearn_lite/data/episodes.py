"""N-way K-shot episodes from a class-indexed data set (chapter 01, "Tasks and episodes").

An episode picks ``num_ways`` (N) classes without replacement, then ``num_shots`` (K)
support and ``num_queries`` (Q) query examples per class, all distinct (support and
query never share an image). Labels are remapped to ``0..N-1`` in the random order the
classes were drawn, so label 0 is a different class in every episode. Support examples
are grouped by class (class 0's K shots, then class 1's, ...), and so are the queries.

Three kinds of data are accepted:

- a dense tensor ``[num_classes, num_per_class, *x_shape]`` (the fast path: one
  indexing operation per episode or per meta-batch);
- any object with ``class_images()`` returning such a tensor (``Omniglot``, ``Glyphs``);
- a generic map-style data set with a ``targets`` list and ``__getitem__ -> (x, y)``
  (the general path: indexed by class; classes may differ in size).

Sampling is deterministic for a seed (a private ``torch.Generator``).
"""
from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import torch
from torch import Tensor

from ..tasks.episode import Episode

__all__ = ["EpisodeSampler", "EpisodeIndices"]


def _as_numpy(data: Tensor):
    """A numpy view of CPU data (shared memory), or None where numpy cannot hold it."""
    if data.device.type != "cpu":
        return None
    try:
        return data.detach().numpy()
    except (TypeError, RuntimeError):
        return None


class EpisodeIndices(NamedTuple):
    """Which data an episode uses (all int64).

    ``classes``: ``[N]`` the original class of each new label ``0..N-1``;
    ``support``: ``[N, K]`` and ``query``: ``[N, Q]`` example indices *within* each class
    (for a generic data set, positions in that class's list of data set indices).
    """

    classes: Tensor
    support: Tensor
    query: Tensor


class EpisodeSampler:
    """Sample N-way K-shot Q-query classification episodes.

    Args:
        data: a dense tensor ``[num_classes, num_per_class, *x_shape]``, an object with
            ``class_images()`` returning one, or a map-style data set with ``targets``.
        num_ways: N, classes per episode.
        num_shots: K, support examples per class.
        num_queries: Q, query examples per class.
        seed: seed of the sampler's own ``torch.Generator``.

    Shapes of what :meth:`sample` returns (an :class:`~metalearn_lite.Episode`)::

        support_x: [N*K, *x_shape]   support_y: [N*K] long, labels 0..N-1, grouped by class
        query_x:   [N*Q, *x_shape]   query_y:   [N*Q] long

    :meth:`sample_batch` adds a leading task dimension ``B`` (for ``torch.func.vmap``).

    Raises:
        ValueError: fewer than N classes, or a class with fewer than K+Q examples
            (the message says how many there are).
    """

    def __init__(self, data: Any, num_ways: int, num_shots: int, num_queries: int, seed: int = 0) -> None:
        for name, value in (("num_ways", num_ways), ("num_shots", num_shots), ("num_queries", num_queries)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.num_ways, self.num_shots, self.num_queries = num_ways, num_shots, num_queries
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.dense: Tensor | None = None
        self._dense_np = None
        self.dataset = None
        self.class_indices: list[Tensor] = []
        if not isinstance(data, Tensor) and hasattr(data, "class_images"):
            data = data.class_images()
        needed = num_shots + num_queries
        if isinstance(data, Tensor):
            if data.dim() < 2:
                raise ValueError(
                    f"data must be [num_classes, num_per_class, *x_shape], got {list(data.shape)}"
                )
            self.dense = data
            self._dense_np = _as_numpy(data)
            num_classes, per_class = int(data.shape[0]), int(data.shape[1])
            self.class_sizes = [per_class] * num_classes
            if per_class < needed:
                raise ValueError(
                    f"a {num_shots}-shot {num_queries}-query episode needs num_shots + num_queries "
                    f"= {needed} examples per class, but every class has {per_class} "
                    f"(data of shape {list(data.shape)})"
                )
        elif hasattr(data, "targets") and hasattr(data, "__getitem__"):
            self.dataset = data
            targets = torch.as_tensor(list(data.targets), dtype=torch.int64)
            if targets.dim() != 1:
                raise ValueError(f"data.targets must be one class label per example, got shape {list(targets.shape)}")
            labels, inverse = torch.unique(targets, sorted=True, return_inverse=True)
            self.class_labels = labels.tolist()
            order = torch.argsort(inverse, stable=True)
            self.class_sizes = torch.bincount(inverse, minlength=len(labels)).tolist()
            self.class_indices = list(torch.split(order, self.class_sizes))
            small = [(lab, n) for lab, n in zip(self.class_labels, self.class_sizes) if n < needed]
            if small:
                shown = ", ".join(f"class {lab} has {n}" for lab, n in small[:5])
                more = f" and {len(small) - 5} more" if len(small) > 5 else ""
                raise ValueError(
                    f"a {num_shots}-shot {num_queries}-query episode needs num_shots + num_queries "
                    f"= {needed} examples per class: {shown}{more}; drop those classes first"
                )
        else:
            raise TypeError(
                "data must be a tensor [num_classes, num_per_class, *x_shape], an object with "
                f"class_images(), or a map-style data set with a targets list; got {type(data).__name__}"
            )
        if self.num_classes < num_ways:
            raise ValueError(
                f"a {num_ways}-way episode needs at least {num_ways} classes, but the data has "
                f"{self.num_classes}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_sizes)

    def reset(self, seed: int | None = None) -> None:
        """Restart the episode stream (of ``seed``, or of the seed given at construction)."""
        self.seed = self.seed if seed is None else seed
        self.generator.manual_seed(self.seed)

    # ------------------------------------------------------------------ indices
    def sample_indices(self) -> EpisodeIndices:
        """Draw one episode's classes ``[N]`` and within-class support ``[N, K]`` / query ``[N, Q]``."""
        g = self.generator
        n, k, q = self.num_ways, self.num_shots, self.num_queries
        classes = torch.randperm(self.num_classes, generator=g)[:n]
        if self.dense is not None:
            # N independent permutations of 0..M-1 in one call: argsort of uniform noise.
            picks = torch.rand(n, self.class_sizes[0], generator=g).argsort(dim=1)[:, : k + q]
        else:
            picks = torch.stack([
                torch.randperm(self.class_sizes[c], generator=g)[: k + q] for c in classes.tolist()
            ])
        return EpisodeIndices(classes, picks[:, :k], picks[:, k:])

    def _labels(self, batch: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
        n, k, q = self.num_ways, self.num_shots, self.num_queries
        device = self.dense.device if self.dense is not None else None
        support_y = torch.arange(n, device=device).repeat_interleave(k)
        query_y = torch.arange(n, device=device).repeat_interleave(q)
        return support_y.expand(*batch, n * k).contiguous(), query_y.expand(*batch, n * q).contiguous()

    def _gather(self, classes: Tensor, picks: Tensor) -> Tensor:
        """Examples ``[..., N, P, *x_shape]`` (contiguous) for classes ``[..., N]`` and picks ``[..., N, P]``."""
        if self._dense_np is not None:
            # numpy's fancy indexing copies on one thread: torch would split this copy over
            # its intra-op threads, which costs ~15 ms per op when the cores are busy.
            return torch.from_numpy(self._dense_np[classes.numpy()[..., None], picks.numpy()])
        if self.dense is not None:
            return self.dense[classes.unsqueeze(-1).to(self.dense.device), picks.to(self.dense.device)]
        rows = []
        for c, row in zip(classes.reshape(-1).tolist(), picks.reshape(-1, picks.shape[-1]).tolist()):
            ids = self.class_indices[c][row].tolist()
            rows.append(torch.stack([torch.as_tensor(self.dataset[i][0]) for i in ids]))
        out = torch.stack(rows)
        return out.reshape(*picks.shape, *out.shape[2:])

    def episode(self, indices: EpisodeIndices) -> Episode:
        """Build the (single or batched) episode that ``indices`` describe."""
        n, k, q = self.num_ways, self.num_shots, self.num_queries
        batch = tuple(indices.classes.shape[:-1])
        support = self._gather(indices.classes, indices.support)
        query = self._gather(indices.classes, indices.query)
        x_shape = support.shape[len(batch) + 2:]
        support_x = support.reshape(*batch, n * k, *x_shape)
        query_x = query.reshape(*batch, n * q, *x_shape)
        support_y, query_y = self._labels(batch)
        return Episode(support_x, support_y, query_x, query_y, num_ways=n, num_shots=k,
                       num_queries=q, batched=bool(batch))

    # ------------------------------------------------------------------ episodes
    def sample(self) -> Episode:
        """One episode: ``support_x [N*K, *x_shape]``, ``support_y [N*K]``, ``query_x [N*Q, ...]``."""
        return self.episode(self.sample_indices())

    def sample_batch(self, num_tasks: int) -> Episode:
        """A meta-batch of ``num_tasks`` episodes with a leading task dim: ``support_x [B, N*K, ...]``.

        Equal to ``Episode.stack([self.sample() for _ in range(num_tasks)])`` from the same
        generator state, but gathered in one indexing operation on dense data.
        """
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
        drawn = [self.sample_indices() for _ in range(num_tasks)]
        return self.episode(EpisodeIndices(*(torch.stack(t) for t in zip(*drawn))))

    def episodes(self, num_episodes: int, num_tasks: int | None = None) -> Iterator[Episode]:
        """Yield ``num_episodes`` episodes (meta-batches of ``num_tasks`` if given)."""
        for _ in range(num_episodes):
            yield self.sample() if num_tasks is None else self.sample_batch(num_tasks)

    def __iter__(self) -> Iterator[Episode]:
        """An endless stream of single episodes."""
        while True:
            yield self.sample()

    def __repr__(self) -> str:
        kind = f"dense {list(self.dense.shape)}" if self.dense is not None else type(self.dataset).__name__
        return (f"EpisodeSampler({self.num_ways}-way {self.num_shots}-shot {self.num_queries}-query, "
                f"{self.num_classes} classes, {kind}, seed={self.seed})")
