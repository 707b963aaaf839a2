"""Matching networks (Vinyals et al., 2016) and relation networks (Sung et al., 2018):
metric-based few-shot classifiers beside prototypical networks (chapter 03's
``protonet.py``); taught in chapter 07.

Both embed support and query images with one network ``f_phi`` (``[n, *x_shape] -> [n, D]``).
Episode: ``N`` ways, support ``S = {(x_i, y_i)}``, query ``x``.

Matching network, the simple version without full-context embeddings (the same ``f_phi``
for support and query)::

    a(x, x_i) = softmax_i( s * cos(f_phi(x), f_phi(x_i)) )          attention over the support set
    p(y = n | x) = sum_i a(x, x_i) * onehot(y_i)_n                    a convex combination of one-hots
    loss = -1/|Q| sum_{(x, y) in Q} log p(y | x)

The paper uses ``s = 1``; we default to ``s = 10`` (as ``cosine_logits`` does), because with
``s = 1`` any two attention weights differ by at most a factor ``e^2`` and training is
slow. ``logits`` are ``log p(y = n | x)``, computed as a log-sum-exp over each class's support
examples (stable, and ``softmax(logits) = p``).

Relation network, with vector embeddings (the paper's conv relation module becomes an MLP)::

    c_n = sum_{i: y_i = n} f_phi(x_i)                                 class representation (sum over K shots)
    r_n(x) = sigmoid( g_psi( [f_phi(x), c_n] ) ) in [0, 1]             relation score
    loss = 1/(|Q| N) sum_{(x, y) in Q} sum_n ( r_n(x) - 1[y = n] )^2   mean squared error to one-hot

(the paper sums the squared errors; the mean does not change the minimiser). With
``aggregate="mean"``, ``c_n`` is the prototype of ``protonet.py`` instead of the sum.

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
from .neural_process import mlp
from .protonet import prototypes

__all__ = ["cosine_attention", "matching_log_probabilities", "MatchingNetResult", "matching_episode", "MatchingNet",
           "class_representations", "relation_scores", "RelationNetResult", "relation_episode", "RelationNet"]


def _embed_episode(embed: Callable[[Tensor], Tensor], episode: Episode) -> tuple[Tensor, Tensor]:
    """``f_phi`` of the support and query inputs in one call: ``[..., n_s, D]`` and ``[..., n_q, D]``.

    One call, so a batch-statistics norm layer normalises both with the same statistics
    (as ``protonet_episode`` does).
    """
    if not episode.is_classification:
        raise EpisodeError("matching and relation networks need a classification episode (num_ways set)")
    sx, _, qx, _ = episode.tensors()
    lead = sx.shape[:1] if episode.batched else torch.Size()
    x_shape = sx.shape[len(lead) + 1:]
    flat_s, flat_q = sx.reshape(-1, *x_shape), qx.reshape(-1, *x_shape)
    z = embed(torch.cat([flat_s, flat_q]))
    if z.dim() != 2 or z.shape[0] != flat_s.shape[0] + flat_q.shape[0]:
        raise EpisodeError(f"the embedding must map [n, *x_shape] to [n, D]; got {list(z.shape)} "
                           f"for n = {flat_s.shape[0] + flat_q.shape[0]}")
    support_z = z[:flat_s.shape[0]].reshape(*lead, sx.shape[len(lead)], -1)
    query_z = z[flat_s.shape[0]:].reshape(*lead, qx.shape[len(lead)], -1)
    return support_z, query_z


# ---------------------------------------------------------------------------- matching networks
def _scaled_cosine(query_embeddings: Tensor, support_embeddings: Tensor, scale: float | Tensor) -> Tensor:
    if query_embeddings.shape[-1] != support_embeddings.shape[-1]:
        raise EpisodeError(f"query embeddings [..., M, D] and support embeddings [..., n_s, D] need the same D, "
                           f"got {list(query_embeddings.shape)} and {list(support_embeddings.shape)}")
    q = F.normalize(query_embeddings, dim=-1)
    s = F.normalize(support_embeddings, dim=-1)
    return scale * (q @ s.transpose(-1, -2))                                          # [..., M, n_s]


def cosine_attention(query_embeddings: Tensor, support_embeddings: Tensor, scale: float | Tensor = 10.0) -> Tensor:
    """``a(x, x_i) = softmax_i(s * cos(f(x), f(x_i)))``: ``[..., M, D]``, ``[..., n_s, D]`` -> ``[..., M, n_s]``.

    Each row is non-negative and sums to 1.
    """
    return torch.softmax(_scaled_cosine(query_embeddings, support_embeddings, scale), dim=-1)


def matching_log_probabilities(query_embeddings: Tensor, support_embeddings: Tensor, support_y: Tensor,
                               num_ways: int, scale: float | Tensor = 10.0) -> Tensor:
    """``log p(y = n | x) = log sum_{i: y_i = n} a(x, x_i)`` -> ``[..., M, N]``.

    Computed stably as ``logsumexp_{i: y_i = n} log a(x, x_i)`` with ``log a = log_softmax(s * cos)``.
    Every class needs a support example.
    """
    if support_embeddings.shape[:-1] != support_y.shape:
        raise EpisodeError(f"support_embeddings must be [..., n_s, D] matching support_y [..., n_s], got "
                           f"{list(support_embeddings.shape)} and {list(support_y.shape)}")
    if support_y.numel() and (int(support_y.min()) < 0 or int(support_y.max()) >= num_ways):
        raise EpisodeError(f"support_y labels must be in 0..{num_ways - 1}, got "
                           f"{int(support_y.min())}..{int(support_y.max())}")
    one_hot = F.one_hot(support_y.long(), num_ways).bool()                            # [..., n_s, N]
    if bool((one_hot.sum(-2) == 0).any()):
        raise EpisodeError(f"every one of the {num_ways} classes needs at least one support example; "
                           f"counts per class: {one_hot.sum(-2).tolist()}")
    log_a = torch.log_softmax(_scaled_cosine(query_embeddings, support_embeddings, scale), dim=-1)  # [..., M, n_s]
    masked = log_a.unsqueeze(-1).masked_fill(~one_hot.unsqueeze(-3), float("-inf"))  # [..., M, n_s, N]
    return torch.logsumexp(masked, dim=-2)


@dataclass
class MatchingNetResult:
    """``loss`` (scalar, mean over tasks and queries), ``accuracy`` (per task ``[B]`` or scalar),
    ``logits`` = ``log p(y = n | x)`` ``[..., M, N]``, ``probabilities`` ``[..., M, N]``,
    ``attention`` ``a(x, x_i)`` ``[..., M, n_s]``."""

    loss: Tensor
    accuracy: Tensor
    logits: Tensor
    probabilities: Tensor
    attention: Tensor


def matching_episode(embed: Callable[[Tensor], Tensor], episode: Episode,
                     scale: float | Tensor = 10.0) -> MatchingNetResult:
    """Loss and accuracy of a matching network on an episode (single or batched).

    ``embed`` maps ``[n, *x_shape]`` to ``[n, D]``; support and query go through it in one call.
    """
    support_z, query_z = _embed_episode(embed, episode)
    n = episode.num_ways
    log_p = matching_log_probabilities(query_z, support_z, episode.support_y, n, scale)
    attention = cosine_attention(query_z, support_z, scale)
    loss = F.nll_loss(log_p.reshape(-1, n), episode.query_y.reshape(-1).long())
    acc = accuracy(log_p, episode.query_y)
    return MatchingNetResult(loss=loss, accuracy=acc.detach(), logits=log_p, probabilities=log_p.exp(),
                             attention=attention)


class MatchingNet(nn.Module):
    """A matching network: an embedding ``f_phi`` plus cosine attention over the support set.

    Example::

        net = MatchingNet(Conv4(num_classes=None))
        result = net(episode)          # MatchingNetResult; result.loss.backward()
    """

    def __init__(self, encoder: nn.Module, scale: float = 10.0, learn_scale: bool = False):
        super().__init__()
        self.encoder = encoder
        if learn_scale:
            self.scale = nn.Parameter(torch.tensor(float(scale)))
        else:
            self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, episode: Episode) -> MatchingNetResult:
        return matching_episode(self.encoder, episode, self.scale)


# ---------------------------------------------------------------------------- relation networks
def class_representations(support_embeddings: Tensor, support_y: Tensor, num_ways: int,
                          aggregate: str = "sum") -> Tensor:
    """``c_n``: the sum (``aggregate="sum"``, the paper's) or the mean of class ``n``'s support embeddings.

    ``support_embeddings [..., N*K, D]``, ``support_y [..., N*K]`` -> ``[..., N, D]``.
    """
    means = prototypes(support_embeddings, support_y, num_ways)      # checks shapes, labels, empty classes
    if aggregate == "mean":
        return means
    if aggregate == "sum":
        counts = F.one_hot(support_y.long(), num_ways).sum(-2).to(means.dtype)   # [..., N]
        return means * counts.unsqueeze(-1)
    raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")


def relation_scores(relation: Callable[[Tensor], Tensor], query_embeddings: Tensor, class_reps: Tensor) -> Tensor:
    """``r_n(x) = sigmoid(g_psi([f(x), c_n]))``: ``[..., M, D]``, ``[..., N, D]`` -> ``[..., M, N]`` in ``[0, 1]``.

    ``relation`` (``g_psi``) maps ``[..., 2D]`` to ``[..., 1]`` (a logit).
    """
    if query_embeddings.shape[-1] != class_reps.shape[-1]:
        raise EpisodeError(f"query embeddings [..., M, D] and class representations [..., N, D] need the same D, "
                           f"got {list(query_embeddings.shape)} and {list(class_reps.shape)}")
    m, n = query_embeddings.shape[-2], class_reps.shape[-2]
    pairs = torch.cat([query_embeddings.unsqueeze(-2).expand(*query_embeddings.shape[:-1], n, -1),
                       class_reps.unsqueeze(-3).expand(*class_reps.shape[:-2], m, n, -1)], dim=-1)   # [..., M, N, 2D]
    logit = relation(pairs)
    if logit.shape != pairs.shape[:-1] + (1,):
        raise EpisodeError(f"the relation module must map [..., 2D] to [..., 1], got {list(logit.shape)} "
                           f"for input {list(pairs.shape)}")
    return torch.sigmoid(logit.squeeze(-1))


@dataclass
class RelationNetResult:
    """``loss`` (scalar MSE), ``accuracy`` (per task ``[B]`` or scalar), ``scores`` ``r_n(x)``
    in ``[0, 1]`` ``[..., M, N]``, ``class_representations`` ``c_n`` ``[..., N, D]``."""

    loss: Tensor
    accuracy: Tensor
    scores: Tensor
    class_representations: Tensor


def relation_episode(embed: Callable[[Tensor], Tensor], relation: Callable[[Tensor], Tensor], episode: Episode,
                     aggregate: str = "sum") -> RelationNetResult:
    """Loss and accuracy of a relation network on an episode (single or batched)."""
    support_z, query_z = _embed_episode(embed, episode)
    n = episode.num_ways
    reps = class_representations(support_z, episode.support_y, n, aggregate)
    scores = relation_scores(relation, query_z, reps)
    target = F.one_hot(episode.query_y.long(), n).to(scores.dtype)
    loss = F.mse_loss(scores, target)
    acc = accuracy(scores, episode.query_y)
    return RelationNetResult(loss=loss, accuracy=acc.detach(), scores=scores, class_representations=reps)


class RelationNet(nn.Module):
    """A relation network: embedding ``f_phi`` and relation module ``g_psi``.

    Args:
        encoder: ``f_phi``, ``[n, *x_shape] -> [n, embedding_dim]``.
        embedding_dim: ``D``.
        hidden: width of the default ``g_psi``, an MLP ``2D -> hidden -> 1``. The paper's module
            puts two conv blocks before an 8-unit layer; on flat embeddings 8 units collapsed to
            "no match" for every class (20% on 5-way Glyphs after 150 episodes), 64 learned (59%).
        relation: a module ``[..., 2D] -> [..., 1]`` to use instead of the default ``g_psi``.
        aggregate: ``"sum"`` (paper) or ``"mean"`` for ``c_n``.

    Example::

        net = RelationNet(Conv4(num_classes=None), embedding_dim=64)
        result = net(episode)          # RelationNetResult; result.loss.backward()
    """

    def __init__(self, encoder: nn.Module, embedding_dim: int, hidden: int = 64, relation: nn.Module | None = None,
                 aggregate: str = "sum"):
        super().__init__()
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.relation = relation if relation is not None else mlp([2 * embedding_dim, hidden, 1])
        self.aggregate = aggregate

    def embed(self, x: Tensor) -> Tensor:
        """``f_phi(x)``: ``[n, *x_shape]`` -> ``[n, D]``."""
        z = self.encoder(x)
        if z.dim() != 2 or z.shape[-1] != self.embedding_dim:
            raise EpisodeError(f"the encoder must output [n, {self.embedding_dim}] (embedding_dim), "
                               f"got {list(z.shape)}")
        return z

    def forward(self, episode: Episode) -> RelationNetResult:
        return relation_episode(self.embed, self.relation, episode, self.aggregate)
