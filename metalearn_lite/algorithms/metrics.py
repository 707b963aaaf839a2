"""Classification accuracy: the package's one implementation (chapters 02, 03, 07, 09).

Every algorithm that reports an accuracy calls ``accuracy`` here: MAML (``maml.accuracy``
is this function), prototypical, matching and relation networks, the transfer baselines,
the in-context classifier, and (for 0/1 answers, through ``education.metrics.binary_accuracy``)
the education chapter. ``tests/test_one_way.py`` scans the package for any other
argmax-compare-mean and checks each caller against the formula below on fixed tensors.

For logits ``f(x_m) in R^N`` over ``N`` classes and labels ``y_m``, ``m = 1..M``::

    accuracy = 1/M sum_m [argmax_n f(x_m)_n == y_m]

ties in the argmax go to the lowest class index (``torch.argmax``).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["accuracy"]


def accuracy(logits: Tensor, labels: Tensor, *, mask: Tensor | None = None,
             dtype: torch.dtype = torch.float32) -> Tensor:
    """Fraction of rows whose argmax equals the label, averaged over the last row axis.

    Args:
        logits: ``[..., M, N]`` scores over ``N`` classes (logits, log-probabilities,
            probabilities or relation scores: only their argmax matters).
        labels: ``[..., M]`` integer class labels in ``0..N-1``.
        mask: optional ``[..., M]`` (bool or 0/1): average only over the rows where it is
            true (e.g. each student's query answers); a row axis with no true entry gives NaN.
        dtype: floating type of the result (``float32`` by default, as every caller used).

    Returns:
        ``[...]``: a 0-d tensor for one task (``[M, N]``), ``[B]`` for a batch of tasks
        (``[B, M, N]``). No gradient flows through an argmax; callers ``.detach()`` as they like.
    """
    if logits.dim() < 2 or logits.shape[:-1] != labels.shape:
        raise ValueError(f"accuracy needs logits [..., M, N] and labels [..., M] with the same leading shape, "
                         f"got logits {list(logits.shape)} and labels {list(labels.shape)}")
    correct = (logits.argmax(dim=-1) == labels).to(dtype)
    if mask is None:
        return correct.mean(dim=-1)
    if mask.shape != labels.shape:
        raise ValueError(f"mask must have the labels' shape {list(labels.shape)}, got {list(mask.shape)}")
    weights = mask.to(dtype)
    return (correct * weights).sum(dim=-1) / weights.sum(dim=-1)
