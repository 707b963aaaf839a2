"""Prototypical networks (Snell et al., 2017), chapter 03.

An embedding ``f_phi`` maps images to vectors. Each class's *prototype* is the mean
embedding of its support examples,

    c_n = 1/K sum_{(x_i, y_i) in S, y_i = n} f_phi(x_i),

and a query is classified by a softmax over negative squared Euclidean distances,

    p_phi(y = n | x) = softmax_n( -||f_phi(x) - c_n||^2 ),

trained by minimising the cross-entropy on the query set. A cosine variant uses
``s * cos(f_phi(x), c_n)`` with a scale ``s``.

All functions accept an optional leading task dimension ``B``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks.episode import Episode, EpisodeError
from .metrics import accuracy

__all__ = ["prototypes", "squared_euclidean_logits", "cosine_logits", "ProtoNetResult",
           "protonet_episode", "ProtoNet"]


def prototypes(support_embeddings: Tensor, support_y: Tensor, num_ways: int) -> Tensor:
    """Class means of the support embeddings.

    Args:
        support_embeddings: ``[..., N*K, D]``.
        support_y: ``[..., N*K]`` integer labels in ``0..N-1``.
        num_ways: ``N``.

    Returns ``[..., N, D]``. Raises ``EpisodeError`` if a class has no support example.
    """
    if support_embeddings.shape[:-1] != support_y.shape:
        raise EpisodeError(f"support_embeddings must be [..., n, D] matching support_y [..., n], got "
                           f"{list(support_embeddings.shape)} and {list(support_y.shape)}")
    if support_y.numel() and (int(support_y.min()) < 0 or int(support_y.max()) >= num_ways):
        raise EpisodeError(f"support_y labels must be in 0..{num_ways - 1}, got "
                           f"{int(support_y.min())}..{int(support_y.max())}")
    one_hot = F.one_hot(support_y.long(), num_ways).to(support_embeddings.dtype)  # [..., n, N]
    counts = one_hot.sum(dim=-2)                                                   # [..., N]
    if bool((counts == 0).any()):
        raise EpisodeError(f"every one of the {num_ways} classes needs at least one support example; "
                           f"counts per class: {counts.tolist()}")
    sums = one_hot.transpose(-1, -2) @ support_embeddings                          # [..., N, D]
    return sums / counts.unsqueeze(-1)


def squared_euclidean_logits(query_embeddings: Tensor, prototypes: Tensor) -> Tensor:
    """``-||f(x) - c_n||^2``: ``query_embeddings [..., M, D]``, ``prototypes [..., N, D]`` -> ``[..., M, N]``."""
    if query_embeddings.shape[-1] != prototypes.shape[-1]:
        raise EpisodeError(f"query embeddings [..., M, D] and prototypes [..., N, D] need the same D, got "
                           f"{list(query_embeddings.shape)} and {list(prototypes.shape)}")
    diff = query_embeddings.unsqueeze(-2) - prototypes.unsqueeze(-3)   # [..., M, N, D]
    return -(diff**2).sum(-1)


def cosine_logits(query_embeddings: Tensor, prototypes: Tensor, scale: float | Tensor = 10.0) -> Tensor:
    """``s * cos(f(x), c_n)`` -> ``[..., M, N]``."""
    q = F.normalize(query_embeddings, dim=-1)
    c = F.normalize(prototypes, dim=-1)
    return scale * (q @ c.transpose(-1, -2))


@dataclass
class ProtoNetResult:
    """``loss`` (scalar, mean over tasks), ``accuracy`` (per task ``[B]`` or scalar),
    ``logits`` ``[..., N*Q, N]``, ``prototypes`` ``[..., N, D]``."""

    loss: Tensor
    accuracy: Tensor
    logits: Tensor
    prototypes: Tensor


def protonet_episode(embed: Callable[[Tensor], Tensor], episode: Episode, distance: str = "euclidean",
                     cosine_scale: float | Tensor = 10.0) -> ProtoNetResult:
    """Loss and accuracy of a prototypical network on an episode (single or batched).

    ``embed`` maps ``[n, *x_shape]`` to ``[n, D]``; the support and query images (of all
    tasks, for a batched episode) go through it in one call.
    """
    if not episode.is_classification:
        raise EpisodeError("prototypical networks need a classification episode (num_ways set)")
    n = episode.num_ways
    sx, sy, qx, qy = episode.tensors()
    lead = sx.shape[:1] if episode.batched else torch.Size()
    x_shape = sx.shape[len(lead) + 1:]
    # Support and query go through f_phi together, so a batch-statistics norm layer
    # normalises both with the same statistics.
    num_support = sx.reshape(-1, *x_shape).shape[0]
    z = embed(torch.cat([sx.reshape(-1, *x_shape), qx.reshape(-1, *x_shape)]))
    support_z = z[:num_support].reshape(*lead, sx.shape[len(lead)], -1)
    query_z = z[num_support:].reshape(*lead, qx.shape[len(lead)], -1)
    protos = prototypes(support_z, sy, n)
    if distance == "euclidean":
        logits = squared_euclidean_logits(query_z, protos)
    elif distance == "cosine":
        logits = cosine_logits(query_z, protos, cosine_scale)
    else:
        raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
    loss = F.cross_entropy(logits.reshape(-1, n), qy.reshape(-1))
    acc = accuracy(logits, qy)
    return ProtoNetResult(loss=loss, accuracy=acc.detach(), logits=logits, prototypes=protos)


class ProtoNet(nn.Module):
    """A prototypical network: an embedding network ``f_phi`` plus the episode loss.

    Example::

        net = ProtoNet(Conv4(num_classes=None))
        result = net(episode)          # ProtoNetResult; result.loss.backward()

    ``lean=True`` (an encoder with ``functional_forward``, e.g. ``Conv4`` with batch norm):
    while grad mode is on, the episode's images go through
    ``encoder.functional_forward(params, x, lean=True)``, channels-last blocks with a
    hand-written backward (``models.fast_ops.lean_block``): the same loss and gradients up to
    float rounding, 1.6-2.0x the training episodes/s of a plain Conv-4 loop on 2 CPU threads
    (``bench/protonet_speed.py``, variant ``lean``), but the loss can be differentiated only
    once (no Hessian-vector products through it). Without grad (evaluation) the encoder runs
    as usual.
    """

    def __init__(self, encoder: nn.Module, distance: str = "euclidean", cosine_scale: float = 10.0,
                 learn_scale: bool = False, lean: bool = False):
        super().__init__()
        if distance not in ("euclidean", "cosine"):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
        if lean and not hasattr(encoder, "functional_forward"):
            raise ValueError(f"lean=True needs an encoder with functional_forward (e.g. Conv4), got "
                             f"{type(encoder).__name__}")
        self.encoder = encoder
        self.lean = lean
        self.distance = distance
        if learn_scale:
            self.cosine_scale = nn.Parameter(torch.tensor(float(cosine_scale)))
        else:
            self.register_buffer("cosine_scale", torch.tensor(float(cosine_scale)))

    def embed(self, x: Tensor) -> Tensor:
        """``f_phi(x)``: ``[n, *x_shape]`` -> ``[n, D]`` (with ``lean`` and grad on: the lean blocks)."""
        if getattr(self, "lean", False) and torch.is_grad_enabled():
            return self.encoder.functional_forward(dict(self.encoder.named_parameters()), x, lean=True)
        return self.encoder(x)

    def forward(self, episode: Episode) -> ProtoNetResult:
        return protonet_episode(self.embed, episode, self.distance, self.cosine_scale)
