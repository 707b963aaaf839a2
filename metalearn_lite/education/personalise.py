"""Few-shot personalisation: a new student is a task, known from K answers.

Task: from K answered items of a held-out student (the *support* set: item indices and 0/1
answers), predict the student's correctness on every other item they answered (the *query*
set). Methods, each a ``predict(items [S, K], answers [S, K]) -> probs [S, num_items]``:

- ``PopulationBaseline``: each item's proportion correct among training students (ignores K).
- ``TwoPLPredictor``: 2PL fitted on the training students; the student's ability posterior on
  a grid from the K answers (prior = fitted ability scale), posterior-predictive P(correct).
- ``MAMLStudent``: a small student model ``logit_i = E_i . w + c_i`` (item embeddings ``E``,
  item biases ``c``, a student vector ``w``); MAML (``metalearn_lite.algorithms.maml``)
  meta-learns ``E``, ``c``, the initial ``w`` and (Meta-SGD) per-entry inner learning rates;
  only ``w`` is adapted to the K answers, with a few gradient steps.
- ``SetEncoderStudent``: amortised (neural-process / ProtoNet-style) inference: each
  (item embedding, answer) pair is encoded, the codes are pooled into a student vector ``z``
  in one forward pass, and ``logit_i = E_i . z + c_i``. Trained on random K in [0, K_max].

Support items are chosen at random among a student's observed items, or adaptively by CAT
(maximum Fisher information under the 2PL; ``irt.adaptive_items``); every method then sees
the same support set. Metrics (``evaluate``): pooled AUC over all query answers with a 95%
bootstrap CI over students, and per-student accuracy and NLL with 95% normal CIs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..algorithms.inner_lr import as_inner_lr, check_inner_lr
from ..algorithms.maml import functional_inner_loop, meta_loss
from ..tasks.episode import Episode
from . import irt
from .metrics import binary_accuracy, mean_ci, rank_auc

__all__ = [
    "split_students",
    "random_support",
    "adaptive_support",
    "PopulationBaseline",
    "TwoPLPredictor",
    "StudentModel",
    "MAMLStudent",
    "SetEncoderStudent",
    "sample_training_batch",
    "evaluate",
]


# --- data -------------------------------------------------------------------------------
def split_students(correct: Tensor, test_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random split of the rows of ``correct`` [S, I] into (train [S_tr, I], test [S_te, I])."""
    if correct.dim() != 2:
        raise ValueError(f"correct must be [num_students, num_items], got {list(correct.shape)}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(correct.shape[0], generator=g)
    num_test = int(round(test_fraction * correct.shape[0]))
    return correct[perm[num_test:]], correct[perm[:num_test]]


def random_support(correct: Tensor, num_shots: int, seed: int = 0) -> Tensor:
    """[S, num_shots] long: random observed items per student (without replacement).

    Nested in ``num_shots``: with the same seed, the first K items are the same for every K.
    """
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(correct.shape, generator=g).masked_fill(torch.isnan(correct), 2.0)
    if num_shots and (scores.sort(1).values[:, num_shots - 1] >= 2.0).any():
        raise ValueError(f"a student has fewer than {num_shots} observed items")
    return scores.argsort(1)[:, :num_shots]


def adaptive_support(correct: Tensor, num_shots: int, fit: irt.TwoPL) -> Tensor:
    """[S, num_shots] long: the items CAT gives (max Fisher information at the EAP under ``fit``)."""
    grid = irt.ability_grid(fit.prior_mean, fit.prior_sd)
    prior = irt.normal_prior(grid, fit.prior_mean, fit.prior_sd)
    return irt.adaptive_items(fit.a, fit.b, correct, num_shots, grid, prior)


def sample_training_batch(
    correct: Tensor, batch_size: int, num_shots: int, num_queries: int, generator: torch.Generator,
    fit: irt.TwoPL | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One meta-batch of student tasks from training students.

    Args:
        correct: [S, I] 0/1 with NaN missing.
        fit: if given, the support items are the ones CAT gives under this 2PL (so models
            also meet the support sets adaptive testing produces); else random.

    Returns:
        support_x [B, num_shots] long items, support_y [B, num_shots] float answers,
        query_x [B, num_queries] long, query_y [B, num_queries] float (disjoint from support).
    """
    rows = torch.randint(0, correct.shape[0], (batch_size,), generator=generator)
    block = correct[rows]
    scores = torch.rand(block.shape, generator=generator).masked_fill(torch.isnan(block), 2.0)
    if fit is not None and num_shots > 0:
        sx = adaptive_support(block, num_shots, fit)
        scores = scores.scatter(1, sx, -1.0)  # support first, then random queries
    order = scores.argsort(1)
    sx = order[:, :num_shots]
    qx = order[:, num_shots:num_shots + num_queries]
    return sx, block.gather(1, sx), qx, block.gather(1, qx)


# --- baselines --------------------------------------------------------------------------
class PopulationBaseline:
    """P(correct on item i) = proportion correct among training students; ignores the support."""

    def __init__(self, train: Tensor):
        self.p = torch.nanmean(train, 0).clamp(1e-3, 1 - 1e-3)

    def predict(self, items: Tensor, answers: Tensor) -> Tensor:
        """items, answers: [S, K] -> [S, num_items]."""
        return self.p.expand(items.shape[0], -1).clone()


class TwoPLPredictor:
    """2PL + grid posterior: P(y_i | support) = sum_g post(theta_g) sigmoid(a_i (theta_g - b_i))."""

    def __init__(self, fit: irt.TwoPL, num_points: int = 161):
        self.fit = fit
        self.grid = irt.ability_grid(fit.prior_mean, fit.prior_sd, num_points)
        self.prior = irt.normal_prior(self.grid, fit.prior_mean, fit.prior_sd)

    def posterior(self, items: Tensor, answers: Tensor) -> Tensor:
        """[S, G] ability posterior."""
        return irt.ability_posterior(self.fit.a, self.fit.b, items, answers, self.grid, self.prior)

    def predict(self, items: Tensor, answers: Tensor) -> Tensor:
        """items, answers: [S, K] -> [S, num_items]."""
        return irt.predict_proba(self.fit.a, self.fit.b, self.posterior(items, answers), self.grid)


# --- meta-learned student models -------------------------------------------------------
class StudentModel(nn.Module):
    """``logit_i = E_i . w + c_i``: item embeddings ``E`` [I, d], item biases ``c`` [I],
    student vector ``w`` [d] (the only part MAML adapts per student).

    ``forward(items)``: items [n] long -> logits [n].
    """

    def __init__(self, num_items: int, dim: int = 4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.item_embedding = nn.Parameter(0.1 * torch.randn(num_items, dim, generator=g))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.student = nn.Parameter(torch.zeros(dim))

    def forward(self, items: Tensor) -> Tensor:
        return self.item_embedding[items] @ self.student + self.item_bias[items]


def _bce(logits: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, y)


def _bce_sum(logits: Tensor, y: Tensor) -> Tensor:
    """Summed (not averaged) BCE: an inner step then grows with K, like a posterior update."""
    return F.binary_cross_entropy_with_logits(logits, y, reduction="sum")


class MAMLStudent:
    """MAML (second order, Meta-SGD inner rates) on ``StudentModel``; adapts only ``student``.

    The inner loss is the *summed* BCE over the K answers, so one step moves ``w`` further
    when there are more answers (as a posterior would); the learned rates set the prior
    strength.

    Args:
        num_items: I.
        dim: d, size of the student vector.
        num_inner_steps: inner gradient steps (training and test).
        inner_lr: initial Meta-SGD rate per entry of ``w`` (a float > 0).
        seed: initialisation and task sampling.

    ``inner_lr`` is then the value the inner step uses, ``{"student": alpha [d]}`` (the
    learned-rate convention of ``metalearn_lite.algorithms.inner_lr``, as ``MAML.inner_lr``
    with ``learn_inner_lr=True``); it is stored as ``log_inner_lr`` (``alpha = exp(log_inner_lr)``,
    so it stays positive).
    """

    def __init__(self, num_items: int, dim: int = 4, num_inner_steps: int = 5, inner_lr: float = 0.05, seed: int = 0):
        self.model = StudentModel(num_items, dim, seed)
        self.log_inner_lr = nn.Parameter(torch.full((dim,), check_inner_lr(inner_lr)).log())
        self.num_inner_steps = num_inner_steps
        self.seed = seed

    def parameters(self) -> list[nn.Parameter]:
        return [*self.model.parameters(), self.log_inner_lr]

    @property
    def inner_lr(self) -> dict[str, Tensor]:
        """``alpha`` as used by the inner step: ``{"student": exp(log_inner_lr)}`` (``[d]``, with its
        graph). ``student.inner_lr()``, the older method form, still returns the same."""
        return as_inner_lr(self._alpha())

    def _alpha(self) -> dict[str, Tensor]:
        return {"student": self.log_inner_lr.exp()}

    def fit(
        self,
        train: Tensor,
        *,
        num_steps: int = 500,
        batch_size: int = 32,
        max_shots: int = 40,
        num_queries: int = 40,
        outer_lr: float = 0.01,
        progress: bool = True,
        fit: irt.TwoPL | None = None,
        adaptive_fraction: float = 0.5,
    ) -> list[float]:
        """Meta-train on training students [S, I]; K ~ Uniform{1..max_shots} per meta-batch.

        With ``fit``, a fraction ``adaptive_fraction`` of meta-batches use CAT support sets.
        Returns the mean query loss per answer, one per meta-step.
        """
        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self.parameters(), lr=outer_lr)
        history = []
        for _ in tqdm(range(num_steps), desc="MAML meta-training", disable=not progress):
            k = int(torch.randint(1, max_shots + 1, (1,), generator=g))
            use_cat = fit is not None and float(torch.rand(1, generator=g)) < adaptive_fraction
            sx, sy, qx, qy = sample_training_batch(train, batch_size, k, num_queries, g, fit if use_cat else None)
            episode = Episode(sx, sy, qx, qy, batched=True)
            result = meta_loss(self.model, {"student": self.model.student}, episode, _bce_sum,
                               num_inner_steps=self.num_inner_steps, inner_lr=self._alpha(), strategy="vmap")
            opt.zero_grad()
            result.loss.backward()
            opt.step()
            history.append(result.loss.item() / num_queries)
        return history

    def adapted_students(self, items: Tensor, answers: Tensor) -> Tensor:
        """[S, d] adapted student vectors ``w'`` from support items/answers [S, K] (K = 0: ``w``)."""
        w0 = self.model.student.detach()
        if items.shape[1] == 0:
            return w0.expand(items.shape[0], -1).clone()
        lr = {k: v.detach() for k, v in self._alpha().items()}

        def adapt(sx: Tensor, sy: Tensor) -> Tensor:
            return functional_inner_loop(self.model, {"student": w0}, sx, sy, _bce_sum,
                                         num_inner_steps=self.num_inner_steps, inner_lr=lr)["student"]

        with torch.no_grad():
            return torch.vmap(adapt)(items, answers.float())

    def predict(self, items: Tensor, answers: Tensor) -> Tensor:
        """items, answers: [S, K] -> [S, num_items] P(correct) after adaptation."""
        w = self.adapted_students(items, answers)
        with torch.no_grad():
            return torch.sigmoid(w @ self.model.item_embedding.T + self.model.item_bias)


class SetEncoderStudent(nn.Module):
    """Amortised inference of a student vector from a set of (item, answer) pairs.

    encoder: r_k = MLP([e_{i_k}, 2 y_k - 1]) -> [hidden], where e = ``encoder_items`` is the encoder's
    own learned item embedding ([I, item_dim], item_dim = 16 by default), separate from the decoder's
    E = ``item_embedding`` ([I, d]); pooled r = sum_k r_k / (K + 1);
    z = MLP([r, log(1 + K)]) -> [d]; decoder: logit_i = E_i . z + c_i.

    ``forward(items [S, K], answers [S, K], mask [S, K] bool or None) -> logits [S, I]``.
    """

    def __init__(self, num_items: int, dim: int = 4, item_dim: int = 16, hidden: int = 64, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.seed = seed
        self.encoder_items = nn.Embedding(num_items, item_dim)
        nn.init.normal_(self.encoder_items.weight, std=0.1)
        self.encode = nn.Sequential(nn.Linear(item_dim + 1, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.to_student = nn.Sequential(nn.Linear(hidden + 1, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.item_embedding = nn.Parameter(0.1 * torch.randn(num_items, dim))
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def student_vector(self, items: Tensor, answers: Tensor, mask: Tensor | None = None) -> Tensor:
        """[S, d] student vectors from support items/answers [S, K]."""
        if items.dim() != 2 or answers.shape != items.shape:
            raise ValueError(f"items and answers must both be [S, K], got {list(items.shape)} and {list(answers.shape)}")
        if mask is None:
            mask = torch.ones(items.shape, dtype=torch.bool)
        pair = torch.cat([self.encoder_items(items), (2 * answers.float() - 1).unsqueeze(-1)], -1)
        codes = self.encode(pair) * mask.unsqueeze(-1)
        count = mask.sum(1, keepdim=True).float()
        pooled = codes.sum(1) / (count + 1.0)
        return self.to_student(torch.cat([pooled, torch.log1p(count)], -1))

    def forward(self, items: Tensor, answers: Tensor, mask: Tensor | None = None) -> Tensor:
        z = self.student_vector(items, answers, mask)
        return z @ self.item_embedding.T + self.item_bias

    def fit(
        self,
        train: Tensor,
        *,
        num_steps: int = 1000,
        batch_size: int = 64,
        max_shots: int = 40,
        num_queries: int = 40,
        lr: float = 3e-3,
        progress: bool = True,
        fit: irt.TwoPL | None = None,
        adaptive_fraction: float = 0.5,
    ) -> list[float]:
        """Train on training students [S, I] with K ~ Uniform{0..max_shots} per student.

        With ``fit``, a fraction ``adaptive_fraction`` of batches use CAT support sets
        (the first K of the CAT order are the first K support slots).
        Returns the query losses, one per step.
        """
        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        for _ in tqdm(range(num_steps), desc="set-encoder training", disable=not progress):
            use_cat = fit is not None and float(torch.rand(1, generator=g)) < adaptive_fraction
            sx, sy, qx, qy = sample_training_batch(train, batch_size, max_shots, num_queries, g, fit if use_cat else None)
            k = torch.randint(0, max_shots + 1, (batch_size, 1), generator=g)
            mask = torch.arange(max_shots).unsqueeze(0) < k
            logits = self(sx, sy, mask).gather(1, qx)
            loss = _bce(logits, qy)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(loss.item())
        return history

    def predict(self, items: Tensor, answers: Tensor) -> Tensor:
        """items, answers: [S, K] -> [S, num_items] P(correct)."""
        with torch.no_grad():
            return torch.sigmoid(self(items, answers))


# --- evaluation -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    """Metrics on held-out students: (mean, 95% CI half-width) each."""

    auc: tuple[float, float]
    accuracy: tuple[float, float]
    nll: tuple[float, float]


def evaluate(
    predict: Callable[[Tensor, Tensor], Tensor],
    test: Tensor,
    support: Tensor,
    *,
    num_bootstrap: int = 200,
    seed: int = 0,
) -> Scores:
    """Score a method on held-out students.

    Args:
        predict: ``predict(items [S, K], answers [S, K]) -> probs [S, I]``.
        test: [S, I] 0/1 with NaN missing.
        support: [S, K] long support items (the query is every other observed item).
        num_bootstrap: resamples of students for the pooled-AUC CI.

    Returns:
        Scores: pooled AUC (bootstrap CI over students), per-student accuracy and NLL (normal CI).
    """
    answers = test.gather(1, support)
    probs = predict(support, answers).double().clamp(1e-6, 1 - 1e-6)
    query = ~torch.isnan(test)
    query.scatter_(1, support, False)
    y = torch.nan_to_num(test.double(), nan=0.0)
    qf = query.double()
    n_q = qf.sum(1)
    nll = -((y * probs.log() + (1 - y) * (1 - probs).log()) * qf).sum(1) / n_q
    acc = binary_accuracy(probs, y, mask=query, dtype=torch.float64)  # [S]: each student's query answers
    auc = rank_auc(probs[query], y[query])
    g = torch.Generator().manual_seed(seed)
    boots = []
    num_students = test.shape[0]
    for _ in range(num_bootstrap):
        rows = torch.randint(0, num_students, (num_students,), generator=g)
        q = query[rows]
        boots.append(rank_auc(probs[rows][q], y[rows][q]))
    if boots:
        b = torch.tensor(boots, dtype=torch.float64)
        lo, hi = torch.quantile(b, 0.025).item(), torch.quantile(b, 0.975).item()
        half = (hi - lo) / 2
    else:
        half = float("nan")
    return Scores(auc=(auc, half), accuracy=mean_ci(acc), nll=mean_ci(nll))
