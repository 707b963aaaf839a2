"""Transfer baselines for few-shot classification: pretrain one classifier, freeze its features,
fit a simple classifier per task; and self-distillation (taught in chapter 08, section 1).

Chen et al. (2019, "A closer look at few-shot classification") and Tian et al. (2020,
"Rethinking few-shot image classification: a good embedding is all you need?") found this
baseline as strong as most meta-learners.

1. *Pretraining.* One network, an encoder ``f_phi`` (``[n, *x_shape] -> [n, D]``) and a linear
   head ``W_0, b_0`` over ALL ``C`` background classes, trained with plain cross-entropy on
   batches pooled from every class (no episodes)::

       L_pre(phi, W_0, b_0) = -1/|batch| sum_{(x, c) in batch} log softmax_c( W_0 f_phi(x) + b_0 )

   ``sample_class_batch`` draws such batches from class-major tensors ``[C, D, *x_shape]``
   (the ``EpisodeSampler`` layout) with the global class labels ``0..C-1``.

2. *A new N-way task.* The head is thrown away and ``f_phi`` is frozen; ``z = f_phi(x)``,
   optionally L2-normalised (``normalize=True``: ``z / ||z||``, which Tian et al. found helps).
   Either the nearest-prototype classifier of ``protonet.py`` (no training)::

       c_n = 1/K sum_{i: y_i = n} z_i,      logits_n(x) = -||z(x) - c_n||^2

   or a logistic-regression head ``W [N, D], b [N]`` fitted on the support features by
   ``num_steps`` of full-batch gradient descent from ``W = 0, b = 0``::

       L_S(W, b) = -1/|S| sum_{(x_i, y_i) in S} log softmax_{y_i}( W z_i + b ) + weight_decay/2 * ||W||^2
       (W, b) <- (W, b) - lr * grad L_S(W, b),        logits(x) = W z(x) + b

3. *Self-distillation* (Tian et al., "born-again" networks): a student of the same architecture is
   trained on the same pooled data to match the frozen teacher's softened predictions::

       p_t = softmax(t / T),  p_s = softmax(s / T)          (both at the temperature T)
       L_KD = alpha * T^2 * 1/M sum_i KL(p_t,i || p_s,i) + (1 - alpha) * CE(s, y)

   The ``T^2`` keeps the soft term's gradient on the scale of the hard one:
   ``d/ds [T^2 * KL(p_t || p_s)] = T * (p_s - p_t)`` per example, so at ``alpha = 1`` the gradient
   of ``L_KD`` with respect to the student logits ``s [M, N]`` is ``T * (p_s - p_t) / M``.

The frozen features of a task's support and query sets are computed in one call of ``f_phi``,
as in ``protonet_episode``: with Conv-4's batch-statistics norm the features then depend on the
whole episode, the same for the support and the query.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..reproducibility import make_generator
from ..tasks.episode import Episode, EpisodeError
from .metrics import accuracy
from .protonet import prototypes, squared_euclidean_logits

__all__ = ["sample_class_batch", "ClassifierResult", "pretrain_classifier_loss", "episode_features",
           "TransferResult", "prototype_classifier", "fit_linear_head", "distillation_loss"]


# ---------------------------------------------------------------------------- pretraining
def sample_class_batch(class_images: Tensor, batch_size: int,
                       generator: int | torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A batch of ``batch_size`` distinct examples drawn uniformly from all ``C * D`` examples.

    Args:
        class_images: class-major ``[C, D, *x_shape]`` (``C`` classes of ``D`` examples; the layout
            ``EpisodeSampler`` takes).
        generator: a seed or ``torch.Generator``; ``None`` uses torch's global generator (so a
            training loop that passes nothing still sees a new batch each step).

    Returns ``images [batch_size, *x_shape]`` and ``labels [batch_size]`` (long), the *global*
    class index ``c`` in ``0..C-1`` of each image (``images[i]`` is ``class_images[labels[i], j]``
    for some ``j``).
    """
    if not isinstance(class_images, Tensor) or class_images.dim() < 2:
        got = list(class_images.shape) if isinstance(class_images, Tensor) else type(class_images).__name__
        raise ValueError(f"class_images must be [num_classes, num_per_class, *x_shape], got {got}")
    num_classes, per_class = int(class_images.shape[0]), int(class_images.shape[1])
    total = num_classes * per_class
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= total:
        raise ValueError(f"batch_size must be an int in 1..{total} (num_classes * num_per_class of class_images "
                         f"{list(class_images.shape)}), got {batch_size!r}")
    gen = None if generator is None else make_generator(generator)
    flat = torch.randperm(total, generator=gen)[:batch_size]
    labels = flat // per_class
    index = flat % per_class
    device = class_images.device
    return class_images[labels.to(device), index.to(device)], labels.to(device)


@dataclass
class ClassifierResult:
    """``loss`` (scalar cross-entropy, with a graph), ``accuracy`` (scalar, detached),
    ``logits`` ``[n, C]``."""

    loss: Tensor
    accuracy: Tensor
    logits: Tensor


def pretrain_classifier_loss(encoder: Callable[[Tensor], Tensor], head: Callable[[Tensor], Tensor],
                             images: Tensor, labels: Tensor) -> ClassifierResult:
    """``L_pre``: cross-entropy of ``head(encoder(images))`` over all ``C`` background classes.

    Args:
        encoder: ``f_phi``, ``[n, *x_shape] -> [n, D]`` (e.g. ``Conv4(num_classes=None)``).
        head: ``[n, D] -> [n, C]`` (e.g. ``nn.Linear(D, C)``).
        images: ``[n, *x_shape]``; labels: ``[n]`` global class labels in ``0..C-1``
            (e.g. from ``sample_class_batch``).
    """
    if labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"images must be [n, *x_shape] and labels [n] with the same n, got "
                         f"{list(images.shape)} and {list(labels.shape)}")
    logits = head(encoder(images))
    if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"head(encoder(images)) must be [n, C] = [{labels.shape[0]}, C], got {list(logits.shape)}")
    num_classes = logits.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1} (the head's {num_classes} classes), "
                         f"got {int(labels.min())}..{int(labels.max())}")
    loss = F.cross_entropy(logits, labels.long())
    acc = accuracy(logits, labels)
    return ClassifierResult(loss=loss, accuracy=acc.detach(), logits=logits)


# ---------------------------------------------------------------------------- new tasks, frozen features
def episode_features(encoder: Callable[[Tensor], Tensor], episode: Episode,
                     normalize: bool = False) -> tuple[Tensor, Tensor]:
    """Frozen ``z = f_phi(x)`` of the support and query sets (no graph): ``[..., n_s, D]``, ``[..., n_q, D]``.

    One call of ``encoder`` on support and query together (see the module docstring). With
    ``normalize``, each ``z`` is divided by its L2 norm.
    """
    if not isinstance(episode, Episode) or not episode.is_classification:
        raise EpisodeError("transfer classifiers need a classification Episode (num_ways set)")
    sx, _, qx, _ = episode.tensors()
    lead = sx.shape[:1] if episode.batched else torch.Size()
    x_shape = sx.shape[len(lead) + 1:]
    flat_s, flat_q = sx.reshape(-1, *x_shape), qx.reshape(-1, *x_shape)
    with torch.no_grad():
        z = encoder(torch.cat([flat_s, flat_q]))
    if z.dim() != 2 or z.shape[0] != flat_s.shape[0] + flat_q.shape[0]:
        raise EpisodeError(f"the encoder must map [n, *x_shape] to [n, D]; got {list(z.shape)} "
                           f"for n = {flat_s.shape[0] + flat_q.shape[0]}")
    if normalize:
        z = F.normalize(z, dim=-1)
    support_z = z[:flat_s.shape[0]].reshape(*lead, sx.shape[len(lead)], -1)
    query_z = z[flat_s.shape[0]:].reshape(*lead, qx.shape[len(lead)], -1)
    return support_z, query_z


@dataclass
class TransferResult:
    """A classifier on frozen features for one episode (single or batched); all detached.

    Attributes:
        logits: query logits ``[..., n_q, N]``.
        loss: query cross-entropy (scalar, mean over tasks and queries).
        accuracy: query accuracy, per task ``[B]`` or scalar.
        support_accuracy: accuracy of the same classifier on the support set (``[B]`` or scalar).
        prototypes: ``c_n`` ``[..., N, D]`` (nearest-prototype classifier), else ``None``.
        weight, bias: the fitted head ``W [..., N, D]``, ``b [..., N]`` (``fit_linear_head``), else ``None``.
    """

    logits: Tensor
    loss: Tensor
    accuracy: Tensor
    support_accuracy: Tensor
    prototypes: Tensor | None = None
    weight: Tensor | None = None
    bias: Tensor | None = None


def _scores(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    n = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, n), labels.reshape(-1).long())
    correct_rate = accuracy(logits, labels)
    return loss, correct_rate


def prototype_classifier(encoder: Callable[[Tensor], Tensor], episode: Episode,
                         normalize: bool = False) -> TransferResult:
    """Nearest prototype on frozen features: ``logits_n(x) = -||z(x) - c_n||^2``, ``c_n`` the class mean.

    With ``normalize=False`` the query logits equal ``protonet_episode(encoder, episode).logits``;
    only the training of ``f_phi`` differs (pooled classes instead of episodes).
    """
    support_z, query_z = episode_features(encoder, episode, normalize)
    protos = prototypes(support_z, episode.support_y, episode.num_ways)
    logits = squared_euclidean_logits(query_z, protos)
    loss, acc = _scores(logits, episode.query_y)
    _, support_acc = _scores(squared_euclidean_logits(support_z, protos), episode.support_y)
    return TransferResult(logits=logits, loss=loss, accuracy=acc, support_accuracy=support_acc, prototypes=protos)


def fit_linear_head(encoder: Callable[[Tensor], Tensor], episode: Episode, num_steps: int = 100,
                    lr: float = 1.0, weight_decay: float = 1e-3, normalize: bool = True) -> TransferResult:
    """Logistic regression ``logits = W z + b`` fitted on the frozen support features.

    ``num_steps`` of full-batch gradient descent on ``L_S(W, b)`` (module docstring) from
    ``W = 0, b = 0``: deterministic, and (a full-batch mean) independent of the support order.
    For a batched episode every task gets its own head (the per-task losses are summed, so each
    head sees only its task's gradient). The default ``lr`` suits normalised features
    (``||z|| = 1``); scale it down for raw features of large norm.

    Args:
        encoder: ``f_phi``, ``[n, *x_shape] -> [n, D]``, frozen (no gradient reaches it).
        episode: single or batched classification episode.
        num_steps: gradient-descent steps (>= 0); lr: their step size (> 0).
        weight_decay: the L2 penalty on ``W`` (>= 0).
        normalize: L2-normalise the features first (Tian et al.).
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise ValueError(f"num_steps must be an int >= 0, got {num_steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    support_z, query_z = episode_features(encoder, episode, normalize)
    n, sy = episode.num_ways, episode.support_y
    weight = support_z.new_zeros(*support_z.shape[:-2], n, support_z.shape[-1])     # [..., N, D]
    bias = support_z.new_zeros(*support_z.shape[:-2], n)                             # [..., N]

    def head(z: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return z @ w.transpose(-1, -2) + b.unsqueeze(-2)                             # [..., n, N]

    with torch.enable_grad():
        for _ in range(num_steps):
            w, b = weight.requires_grad_(True), bias.requires_grad_(True)
            logits = head(support_z, w, b)
            per_example = F.cross_entropy(logits.reshape(-1, n), sy.reshape(-1).long(), reduction="none")
            loss = per_example.reshape(sy.shape).mean(-1).sum() + 0.5 * weight_decay * (w ** 2).sum()
            grad_w, grad_b = torch.autograd.grad(loss, [w, b])
            weight, bias = (w - lr * grad_w).detach(), (b - lr * grad_b).detach()
    logits = head(query_z, weight, bias)
    loss, acc = _scores(logits, episode.query_y)
    _, support_acc = _scores(head(support_z, weight, bias), sy)
    return TransferResult(logits=logits, loss=loss, accuracy=acc, support_accuracy=support_acc,
                          weight=weight, bias=bias)


# ---------------------------------------------------------------------------- self-distillation
def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None = None,
                      temperature: float = 4.0, alpha: float = 0.5) -> Tensor:
    """``L_KD = alpha * T^2 * 1/M sum_i KL(p_t,i || p_s,i) + (1 - alpha) * CE(s, y)`` (module docstring).

    Args:
        student_logits: ``s [M, N]`` (gradients flow into it).
        teacher_logits: ``t [M, N]``, treated as constants (detached here).
        labels: ``y [M]`` in ``0..N-1``; may be ``None`` only when ``alpha == 1``.
        temperature: ``T > 0``; it softens both the teacher's and the student's softmax.
        alpha: weight of the soft term, in ``[0, 1]``.

    Returns a scalar. ``KL = sum_n p_t,n (log p_t,n - log p_s,n)``, averaged over the ``M`` rows.
    """
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must both be [M, N], got "
                         f"{list(student_logits.shape)} and {list(teacher_logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if labels is None and alpha != 1.0:
        raise ValueError(f"labels are needed for the cross-entropy term unless alpha == 1, got alpha={alpha}")
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != student_logits.shape[0]):
        raise ValueError(f"labels must be [M] = [{student_logits.shape[0]}], got {list(labels.shape)}")
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    loss = alpha * t * t * kl
    if alpha != 1.0:
        loss = loss + (1.0 - alpha) * F.cross_entropy(student_logits, labels.long())
    return loss
