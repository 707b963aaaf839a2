"""The one value every algorithm in the course consumes: a task (episode).

A task is a small data set split in two: the *support* set the learner adapts on,
and the *query* set it is evaluated on (chapter 01, "Tasks and episodes").

Shapes (single task)::

    support_x: [num_support, *x_shape]     query_x: [num_query, *x_shape]
    support_y: [num_support, *y_shape]     query_y: [num_query, *y_shape]

A *batched* episode has a leading task dimension ``B`` on all four tensors, which is
what ``torch.func.vmap`` maps over. Classification episodes carry ``num_ways`` (N),
``num_shots`` (K, support examples per class) and ``num_queries`` (Q, query examples
per class); their labels are integers in ``0..N-1``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["Episode", "EpisodeError"]


class EpisodeError(ValueError):
    """A task's tensors do not have the shapes, dtypes or labels that were expected."""


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


@dataclass(frozen=True)
class Episode:
    """A few-shot task: support set, query set, and (for classification) N, K, Q.

    Args:
        support_x: ``[num_support, *x_shape]`` or ``[B, num_support, *x_shape]``.
        support_y: ``[num_support, *y_shape]`` or ``[B, num_support, *y_shape]``;
            integer labels ``[.., num_support]`` for classification.
        query_x: like ``support_x`` with ``num_query`` rows.
        query_y: like ``support_y`` with ``num_query`` rows.
        num_ways: N, classes per task (classification only).
        num_shots: K, support examples per class (classification only).
        num_queries: Q, query examples per class (classification only).
        batched: whether there is a leading task dimension ``B``.

    Raises:
        EpisodeError: naming the expected and the received shape/dtype/labels.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    num_ways: int | None = None
    num_shots: int | None = None
    num_queries: int | None = None
    batched: bool = False

    def __post_init__(self) -> None:
        names = ("support_x", "support_y", "query_x", "query_y")
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, Tensor):
                raise EpisodeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        lead = 1 if self.batched else 0
        dims = "[B, n, ...]" if self.batched else "[n, ...]"
        for name in names:
            t = getattr(self, name)
            if t.dim() < lead + 1:
                raise EpisodeError(f"{name} must have shape {dims}, got {_shape(t)}")
        if self.batched:
            sizes = {name: getattr(self, name).shape[0] for name in names}
            if len(set(sizes.values())) != 1:
                raise EpisodeError(f"all four tensors need the same number of tasks B, got {sizes}")
        sx, sy, qx, qy = self.support_x, self.support_y, self.query_x, self.query_y
        if sx.shape[lead] != sy.shape[lead]:
            raise EpisodeError(
                f"support_x and support_y must have the same number of examples, "
                f"got support_x {_shape(sx)} and support_y {_shape(sy)}"
            )
        if qx.shape[lead] != qy.shape[lead]:
            raise EpisodeError(
                f"query_x and query_y must have the same number of examples, "
                f"got query_x {_shape(qx)} and query_y {_shape(qy)}"
            )
        if sx.shape[lead + 1 :] != qx.shape[lead + 1 :]:
            raise EpisodeError(
                f"support_x and query_x must have the same example shape, "
                f"got {list(sx.shape[lead + 1:])} and {list(qx.shape[lead + 1:])}"
            )
        if sy.shape[lead + 1 :] != qy.shape[lead + 1 :]:
            raise EpisodeError(
                f"support_y and query_y must have the same target shape, "
                f"got {list(sy.shape[lead + 1:])} and {list(qy.shape[lead + 1:])}"
            )
        if sx.dtype != qx.dtype:
            raise EpisodeError(f"support_x and query_x must share a dtype, got {sx.dtype} and {qx.dtype}")
        if self.num_ways is not None:
            self._check_classification(lead)

    def _check_classification(self, lead: int) -> None:
        n, k, q = self.num_ways, self.num_shots, self.num_queries
        for name, value in (("num_ways", n), ("num_shots", k), ("num_queries", q)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise EpisodeError(f"{name} must be a positive int, got {value!r}")
        for name in ("support_y", "query_y"):
            y = getattr(self, name)
            if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                raise EpisodeError(
                    f"{name} must hold integer class labels (torch.long) for a "
                    f"{n}-way episode, got dtype {y.dtype}"
                )
            if y.dim() != lead + 1:
                want = "[B, n]" if self.batched else "[n]"
                raise EpisodeError(f"{name} must have shape {want} (one label per example), got {_shape(y)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n):
                raise EpisodeError(
                    f"{name} labels must be in 0..{n - 1} for a {n}-way episode, "
                    f"got labels in {int(y.min())}..{int(y.max())}"
                )
        if k is not None and self.support_y.shape[lead] != n * k:
            raise EpisodeError(
                f"a {n}-way {k}-shot episode needs num_ways*num_shots = {n * k} support "
                f"examples, got {self.support_y.shape[lead]}"
            )
        if q is not None and self.query_y.shape[lead] != n * q:
            raise EpisodeError(
                f"a {n}-way episode with {q} queries per class needs {n * q} query "
                f"examples, got {self.query_y.shape[lead]}"
            )

    # ------------------------------------------------------------------ views
    @property
    def num_tasks(self) -> int:
        """B for a batched episode, 1 otherwise."""
        return int(self.support_x.shape[0]) if self.batched else 1

    @property
    def is_classification(self) -> bool:
        return self.num_ways is not None

    def __len__(self) -> int:
        return self.num_tasks

    def __getitem__(self, index: int) -> "Episode":
        """Task ``index`` of a batched episode, as a single (unbatched) episode."""
        if not self.batched:
            raise EpisodeError("indexing needs a batched episode (leading task dimension)")
        return replace(
            self,
            support_x=self.support_x[index],
            support_y=self.support_y[index],
            query_x=self.query_x[index],
            query_y=self.query_y[index],
            batched=False,
        )

    def __iter__(self) -> Iterator["Episode"]:
        if not self.batched:
            yield self
            return
        for i in range(self.num_tasks):
            yield self[i]

    def tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(support_x, support_y, query_x, query_y)``, e.g. to pass to ``vmap``."""
        return self.support_x, self.support_y, self.query_x, self.query_y

    def to(self, *args, **kwargs) -> "Episode":
        """Move/cast like ``Tensor.to``; labels of classification episodes keep their dtype."""
        def move(t: Tensor, is_label: bool) -> Tensor:
            if is_label and self.is_classification:
                dev = kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))), None))
                return t.to(dev) if dev is not None else t
            return t.to(*args, **kwargs)

        return replace(
            self,
            support_x=move(self.support_x, False),
            support_y=move(self.support_y, True),
            query_x=move(self.query_x, False),
            query_y=move(self.query_y, True),
        )

    @staticmethod
    def stack(episodes: Sequence["Episode"]) -> "Episode":
        """Stack single episodes of identical shapes into a batched episode ``[B, ...]``."""
        if len(episodes) == 0:
            raise EpisodeError("cannot stack an empty list of episodes")
        first = episodes[0]
        for i, ep in enumerate(episodes):
            if ep.batched:
                raise EpisodeError(f"episode {i} is already batched; stack single episodes")
            for f in ("num_ways", "num_shots", "num_queries"):
                if getattr(ep, f) != getattr(first, f):
                    raise EpisodeError(
                        f"episode {i} has {f}={getattr(ep, f)}, expected {getattr(first, f)} like episode 0"
                    )
            for name in ("support_x", "support_y", "query_x", "query_y"):
                if getattr(ep, name).shape != getattr(first, name).shape:
                    raise EpisodeError(
                        f"episode {i} has {name} of shape {_shape(getattr(ep, name))}, "
                        f"expected {_shape(getattr(first, name))} like episode 0"
                    )
        return Episode(
            support_x=torch.stack([e.support_x for e in episodes]),
            support_y=torch.stack([e.support_y for e in episodes]),
            query_x=torch.stack([e.query_x for e in episodes]),
            query_y=torch.stack([e.query_y for e in episodes]),
            num_ways=first.num_ways,
            num_shots=first.num_shots,
            num_queries=first.num_queries,
            batched=True,
        )

    def __repr__(self) -> str:
        parts = [f"{f.name}={_shape(getattr(self, f.name))}" for f in fields(self)[:4]]
        if self.is_classification:
            parts.append(f"num_ways={self.num_ways}, num_shots={self.num_shots}, num_queries={self.num_queries}")
        if self.batched:
            parts.append("batched=True")
        return f"Episode({', '.join(parts)})"
