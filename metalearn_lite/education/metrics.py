"""Metrics for predicting correctness: rank AUC, accuracy, NLL, and 95% confidence intervals.

``binary_accuracy`` is not a second accuracy: a model of 0/1 answers gives ``p = P(correct)``,
i.e. the two-class distribution ``(1 - p, p)``; predicting its more probable answer (1 iff
``p > 0.5``, a tie going to 0) and counting the matches is exactly the classification accuracy
of ``metalearn_lite.algorithms.metrics.accuracy``, which computes it. Only the input convention
differs (one probability per answer, not scores over classes), hence the distinct name.
``accuracy`` (the older name) stays as the pooled float version.
"""
from __future__ import annotations

import math

import torch

__all__ = ["rank_auc", "binary_accuracy", "accuracy", "binary_nll", "mean_ci"]


def rank_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties counted as one half.

    Args:
        scores: [N] predicted scores (higher = more likely correct).
        labels: [N] 0/1 labels.

    Returns:
        AUC in [0, 1], or NaN when ``labels`` holds only one class.
    """
    scores = scores.detach().reshape(-1).double()
    labels = labels.detach().reshape(-1).double()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have the same length, got {scores.shape[0]} and {labels.shape[0]}")
    num_pos = int(labels.sum().item())
    num_neg = labels.numel() - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2
    ranks[order] = avg[inverse]
    rank_sum_pos = ranks[labels == 1].sum().item()
    return (rank_sum_pos - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)


def binary_accuracy(probs: torch.Tensor, labels: torch.Tensor, *, mask: torch.Tensor | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fraction of answers predicted right by the more probable answer (1 iff ``probs > 0.5``).

    Args:
        probs: ``[..., M]`` P(correct) per answer.
        labels: ``[..., M]`` 0/1 answers (any dtype).
        mask: optional ``[..., M]``: average only where true (e.g. each student's query items).
        dtype: floating type of the result.

    Returns:
        ``[...]`` (0-d for ``[M]``): ``algorithms.metrics.accuracy`` of the two-class scores
        ``(1 - p, p)``, whose argmax is 1 exactly when ``p > 0.5``.
    """
    if probs.shape != labels.shape:
        raise ValueError(f"probs and labels must have the same shape, got {list(probs.shape)} and {list(labels.shape)}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be 0/1 answers, got other values: "
                         f"{sorted(set(labels[(labels != 0) & (labels != 1)].reshape(-1).tolist()))[:5]}")
    # imported here so that ``mean_ci`` users (class_view, learning_paths) do not load every algorithm
    from ..algorithms.metrics import accuracy as class_accuracy

    two_class = torch.stack([1 - probs, probs], dim=-1)
    return class_accuracy(two_class, labels.long(), mask=mask, dtype=dtype)


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """``binary_accuracy`` pooled over all answers, as a float; probs, labels: ``[N]`` (any
    shape, flattened). The older name, kept for older code."""
    return binary_accuracy(probs.reshape(-1), labels.reshape(-1)).item()


def binary_nll(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-6) -> float:
    """Mean negative log-likelihood (nats) of 0/1 ``labels`` under ``probs``; both [N]."""
    p = probs.reshape(-1).double().clamp(eps, 1 - eps)
    y = labels.reshape(-1).double()
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean().item()


def mean_ci(values) -> tuple[float, float]:
    """Mean and 95% normal-approximation half-width (1.96 * SD / sqrt(n)), NaNs dropped.

    Args:
        values: [n] per-student (or per-class) values.

    Returns:
        (mean, half_width); half_width is NaN for fewer than two values.
    """
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    v = v[~torch.isnan(v)]
    if v.numel() == 0:
        return float("nan"), float("nan")
    if v.numel() < 2:
        return v.mean().item(), float("nan")
    return v.mean().item(), 1.96 * v.std(unbiased=True).item() / math.sqrt(v.numel())
