"""In-context (black-box) meta-learning with a transformer, chapter 09.

The model reads the whole support set (the *context*) and predicts at the query inputs (the
*targets*) in one forward pass: no gradient step at test time. It is a learner written as a
network, ``f_theta(C, x_t) -> p(y_t | x_t, C)``, trained over tasks like a neural process
(Nguyen & Grover, 2022, "Transformer neural processes", the TNP-D variant).

Tokens (no positional encoding: a set has no order)::

    h_i^0 = E([x_i, y_i, 1])        context token i   (the 1 flags "this token carries a label")
    h_t^0 = E([x_t, 0,   0])        target token t    (same embedding MLP ``E``, label zeroed)

Each of ``L`` pre-norm layers lets *every* token attend to the *context* tokens only::

    a   = LN_1(h)
    h  <- h + MultiHead(query = a, key = a_C, value = a_C)         a_C: the context rows of a
    h  <- h + FF(LN_2(h))                                           FF: Linear-ReLU-Linear

so a context token's update depends on the context set (permutation-equivariant) and a target's
on its own token and the context set (permutation-invariant in the context); targets never see
each other, so each is predicted as if it were the last token of its own sequence. A head
reads the targets' last states::

    mu_t, s_t = W(LN(h_t^L)),   sigma_t = min_std + (1 - min_std) softplus(s_t)      (regression)
    logits_t  = W(LN(h_t^L))                                                           (classification)

and training minimises ``-1/|T| sum_t log p(y_t | x_t, C)`` over tasks.

``InContextRegressor`` has the neural processes' calling convention (``forward`` ->
``NPPrediction``, ``loss`` -> ``NPLoss``, ``log_likelihood`` -> ``[B]``), so chapter 09 swaps
it in wherever a CNP goes. ``InContextClassifier`` reads an N-way K-shot episode as the
sequence of (feature, one-hot label) pairs with the query features last.

Shapes: ``context_x [B, n_c, d_x]``, ``context_y [B, n_c, d_y]``, ``target_x [B, n_t, d_x]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks.episode import Episode, EpisodeError
from .metrics import accuracy
from .neural_process import NPLoss, NPPrediction, bounded_std, check_context_and_targets, predictive_loss

__all__ = ["ContextAttentionLayer", "ContextTransformer", "InContextRegressor", "InContextClassifier"]


class ContextAttentionLayer(nn.Module):
    """One pre-norm layer: every token attends to the context tokens, then a feed-forward block."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads must divide d_model, got num_heads={num_heads} and d_model={d_model}")
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.feedforward = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.ReLU(),
                                         nn.Linear(dim_feedforward, d_model))

    def forward(self, h: Tensor, num_context: int) -> Tensor:
        """``h [B, n_c + n_t, d]`` (context rows first) -> the same shape."""
        a = self.norm1(h)
        context = a[:, :num_context]
        h = h + self.attention(a, context, context, need_weights=False)[0]
        return h + self.feedforward(self.norm2(h))


class ContextTransformer(nn.Module):
    """Token embedding ``E`` and ``L`` :class:`ContextAttentionLayer` s; returns the targets' last states."""

    def __init__(self, token_dim: int, d_model: int = 64, num_heads: int = 4, num_layers: int = 4,
                 dim_feedforward: int = 128):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(token_dim, d_model), nn.ReLU(), nn.Linear(d_model, d_model))
        self.layers = nn.ModuleList(ContextAttentionLayer(d_model, num_heads, dim_feedforward)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, context_tokens: Tensor, target_tokens: Tensor) -> Tensor:
        """``[B, n_c, token_dim]``, ``[B, n_t, token_dim]`` -> target states ``[B, n_t, d_model]``."""
        num_context = context_tokens.shape[1]
        if num_context < 1:
            raise EpisodeError("an in-context learner needs at least one context point, got 0")
        h = self.embed(torch.cat([context_tokens, target_tokens], dim=1))
        for layer in self.layers:
            h = layer(h, num_context)
        return self.norm(h[:, num_context:])


class InContextRegressor(nn.Module):
    """A transformer neural process (TNP-D): Gaussian predictions at the targets from the context.

    Args:
        x_dim, y_dim: ``d_x``, ``d_y``.
        d_model, num_heads, num_layers, dim_feedforward: the transformer's width, heads, depth, FF width.
        min_std: the predictive std floor (``bounded_std``); 1e-3 so it never caps the likelihood
            below the exact GP posterior's.
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, d_model: int = 64, num_heads: int = 4, num_layers: int = 4,
                 dim_feedforward: int = 128, min_std: float = 1e-3):
        super().__init__()
        bounded_std(torch.zeros(()), min_std)  # checks the floor
        self.x_dim, self.y_dim, self.min_std = x_dim, y_dim, float(min_std)
        self.transformer = ContextTransformer(x_dim + y_dim + 1, d_model, num_heads, num_layers, dim_feedforward)
        self.head = nn.Linear(d_model, 2 * y_dim)

    def tokens(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> tuple[Tensor, Tensor]:
        """``[x_i, y_i, 1]`` for the context and ``[x_t, 0, 0]`` for the targets."""
        ones = context_x.new_ones(*context_x.shape[:2], 1)
        zeros = target_x.new_zeros(*target_x.shape[:2], self.y_dim + 1)
        return torch.cat([context_x, context_y, ones], -1), torch.cat([target_x, zeros], -1)

    def forward(self, context_x: Tensor, context_y: Tensor, target_x: Tensor) -> NPPrediction:
        """Predictive mean and std ``[B, n_t, d_y]``."""
        check_context_and_targets(context_x, context_y, target_x, self.x_dim, self.y_dim)
        out = self.head(self.transformer(*self.tokens(context_x, context_y, target_x)))
        mean, raw = out.split(self.y_dim, dim=-1)
        return NPPrediction(mean=mean, std=bounded_std(raw, self.min_std))

    def loss(self, episode: Episode) -> NPLoss:
        """``-1/|T| sum_t log N(y_t; mu_t, sigma_t^2)`` on a batched episode (context = support)."""
        return predictive_loss(self, episode)

    def log_likelihood(self, episode: Episode, num_samples: int = 1) -> Tensor:
        """Per-target-point predictive log-likelihood ``[B]`` (deterministic: ``num_samples`` unused)."""
        with torch.no_grad():
            return self.loss(episode).log_likelihood


class InContextClassifier(nn.Module):
    """N-way classification in context: support tokens ``[f_i, onehot(y_i), 1]``, query tokens ``[f_q, 0, 0]``.

    ``f`` are fixed features (chapter 09 uses the shipped ProtoNet's Conv-4 embeddings, 64-d);
    the query logits come from the transformer's last state of each query token.
    """

    def __init__(self, feature_dim: int, num_ways: int = 5, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128):
        super().__init__()
        self.feature_dim, self.num_ways = feature_dim, num_ways
        self.transformer = ContextTransformer(feature_dim + num_ways + 1, d_model, num_heads, num_layers,
                                              dim_feedforward)
        self.head = nn.Linear(d_model, num_ways)

    def forward(self, support_features: Tensor, support_labels: Tensor, query_features: Tensor) -> Tensor:
        """``[B, n_s, d_f]``, integer labels ``[B, n_s]`` in ``0..N-1``, ``[B, n_q, d_f]`` -> logits ``[B, n_q, N]``."""
        d = self.feature_dim
        for name, t in (("support_features", support_features), ("query_features", query_features)):
            if t.dim() != 3 or t.shape[-1] != d:
                raise EpisodeError(f"{name} must be [B, n, {d}], got {list(t.shape)}")
        if support_labels.shape != support_features.shape[:2]:
            raise EpisodeError(f"support_labels must be [B, n_s] = {list(support_features.shape[:2])}, "
                               f"got {list(support_labels.shape)}")
        if support_labels.min() < 0 or support_labels.max() >= self.num_ways:
            raise EpisodeError(f"support_labels must lie in 0..{self.num_ways - 1}")
        onehot = F.one_hot(support_labels.long(), self.num_ways).to(support_features.dtype)
        ones = support_features.new_ones(*support_features.shape[:2], 1)
        zeros = query_features.new_zeros(*query_features.shape[:2], self.num_ways + 1)
        context = torch.cat([support_features, onehot, ones], -1)
        return self.head(self.transformer(context, torch.cat([query_features, zeros], -1)))

    def loss(self, support_features: Tensor, support_labels: Tensor, query_features: Tensor,
             query_labels: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy over the queries and the accuracy ``[B]`` per episode."""
        logits = self(support_features, support_labels, query_features)
        loss = F.cross_entropy(logits.flatten(0, 1), query_labels.flatten().long())
        acc = accuracy(logits, query_labels)
        return loss, acc.detach()
