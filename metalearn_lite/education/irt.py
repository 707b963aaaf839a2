"""Item response theory: the two-parameter logistic (2PL) model and adaptive testing.

2PL (Birnbaum, 1968): student ``j`` answers item ``i`` correctly with probability

    P(y_ij = 1 | theta_j) = sigmoid(a_i * (theta_j - b_i))

with discrimination ``a_i > 0``, difficulty ``b_i`` and ability ``theta_j``. A new student's
ability is inferred on a grid: posterior(theta) ∝ prior(theta) * prod_k P(y_k | theta). The
prior must match the *fitted* ability scale (on SweSAT the fitted scale had SD ~0.25; a
N(0, 1) prior there made one answer worse than none), so ``fit_2pl`` reports it.

Fisher information of item i at theta: I_i(theta) = a_i^2 * p_i(theta) * (1 - p_i(theta)).
Computerised adaptive testing (CAT) gives next the not-yet-answered item with the largest
information at the current ability estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = [
    "TwoPL",
    "fit_2pl",
    "ability_grid",
    "normal_prior",
    "ability_posterior",
    "posterior_mean_sd",
    "predict_proba",
    "fisher_information",
    "select_max_information",
    "adaptive_items",
]


@dataclass(frozen=True)
class TwoPL:
    """A fitted 2PL.

    Attributes:
        a: [num_items] discriminations (> 0).
        b: [num_items] difficulties.
        theta: [num_students] abilities of the training students (MAP).
        prior_mean, prior_sd: mean and SD of the fitted abilities: use them as the prior
            for new students.
    """

    a: torch.Tensor
    b: torch.Tensor
    theta: torch.Tensor
    prior_mean: float
    prior_sd: float

    def proba(self, theta: torch.Tensor) -> torch.Tensor:
        """P(correct); theta: [S] -> [S, num_items]."""
        return torch.sigmoid(self.a * (theta.unsqueeze(-1) - self.b))


def _check_responses(responses: torch.Tensor) -> None:
    if responses.dim() != 2:
        raise ValueError(f"responses must be [num_students, num_items], got {list(responses.shape)}")


def fit_2pl(
    responses: torch.Tensor,
    *,
    num_steps: int = 500,
    lr: float = 0.05,
    progress: bool = False,
) -> TwoPL:
    """Joint MAP fit of a 2PL by full-batch gradient ascent (Adam) in torch.

    Maximises sum_ij log P(y_ij | z_j, a_i, b_i) over observed entries, plus weak priors
    log N(log a_i; 0, 1) + log N(b_i; 0, 3), where the abilities z = (theta - mean) / SD are
    standardised inside the model: this pins the scale (otherwise theta -> 0, a -> inf).

    Args:
        responses: [num_students, num_items] 0/1 with NaN for missing.
        num_steps: Adam steps (deterministic: the start is fixed, no sampling).
        lr: Adam learning rate.
        progress: show a ``tqdm.auto`` bar.

    Returns:
        TwoPL; ``prior_mean``/``prior_sd`` are the mean/SD of the fitted abilities.
    """
    _check_responses(responses)
    y = responses.float()
    observed = ~torch.isnan(y)
    y = torch.nan_to_num(y, nan=0.0)
    mask = observed.float()
    num_students, num_items = y.shape
    # start: b from item log-odds, theta from student log-odds (both centred)
    p_item = (y.sum(0) + 0.5) / (mask.sum(0) + 1.0)
    p_student = (y.sum(1) + 0.5) / (mask.sum(1) + 1.0)
    b = (-torch.logit(p_item)).clone().requires_grad_(True)
    theta0 = torch.logit(p_student)
    theta = ((theta0 - theta0.mean()) / (theta0.std() + 1e-8) * 0.5).clone().requires_grad_(True)
    log_a = torch.zeros(num_items, requires_grad=True)
    opt = torch.optim.Adam([log_a, b, theta], lr=lr)
    steps = tqdm(range(num_steps), desc="fit 2PL", disable=not progress)
    for _ in steps:
        opt.zero_grad()
        z = (theta - theta.mean()) / theta.std()
        logits = log_a.exp() * (z.unsqueeze(1) - b)
        loglik = -(F.binary_cross_entropy_with_logits(logits, y, reduction="none") * mask).sum()
        logprior = -0.5 * log_a.pow(2).sum() - 0.5 * (b / 3.0).pow(2).sum()
        loss = -(loglik + logprior) / mask.sum()
        loss.backward()
        opt.step()
    theta_d = ((theta - theta.mean()) / theta.std()).detach()
    return TwoPL(
        a=log_a.detach().exp(),
        b=b.detach(),
        theta=theta_d,
        prior_mean=theta_d.mean().item(),
        prior_sd=theta_d.std().item(),
    )


def ability_grid(prior_mean: float = 0.0, prior_sd: float = 1.0, num_points: int = 161, width: float = 5.0) -> torch.Tensor:
    """[num_points] equally spaced abilities covering prior_mean ± width * prior_sd."""
    return torch.linspace(prior_mean - width * prior_sd, prior_mean + width * prior_sd, num_points, dtype=torch.float64)


def normal_prior(grid: torch.Tensor, mean: float, sd: float) -> torch.Tensor:
    """[G] normalised N(mean, sd^2) weights on ``grid`` [G]."""
    logw = -0.5 * ((grid - mean) / sd) ** 2
    w = torch.exp(logw - logw.max())
    return w / w.sum()


def ability_posterior(
    a: torch.Tensor,
    b: torch.Tensor,
    items: torch.Tensor,
    answers: torch.Tensor,
    grid: torch.Tensor,
    prior: torch.Tensor,
) -> torch.Tensor:
    """Posterior of ability on a grid given K answers, for a batch of students.

    posterior[s, g] ∝ prior[g] * prod_k p_{items[s,k]}(grid[g])^y * (1 - p)^(1 - y)

    Args:
        a, b: [num_items] 2PL parameters.
        items: [S, K] long item indices answered by each student (K may be 0).
        answers: [S, K] 0/1 answers (NaN entries are ignored).
        grid: [G] abilities.
        prior: [G] prior weights (sum to 1).

    Returns:
        [S, G] float64 posterior weights, each row summing to 1.
    """
    if items.dim() != 2 or answers.shape != items.shape:
        raise ValueError(f"items and answers must both be [S, K], got {list(items.shape)} and {list(answers.shape)}")
    a = a.double()
    b = b.double()
    logits = a[items].unsqueeze(-1) * (grid.view(1, 1, -1) - b[items].unsqueeze(-1))  # [S, K, G]
    y = answers.double().unsqueeze(-1)
    valid = ~torch.isnan(y)
    y = torch.nan_to_num(y, nan=0.0)
    loglik = -F.binary_cross_entropy_with_logits(logits, y.expand_as(logits), reduction="none")
    loglik = (loglik * valid).sum(1)  # [S, G]
    logpost = loglik + prior.double().clamp_min(1e-300).log().unsqueeze(0)
    return torch.softmax(logpost, dim=-1)


def posterior_mean_sd(posterior: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EAP estimate and posterior SD; posterior: [S, G], grid: [G] -> ([S], [S])."""
    mean = posterior @ grid
    var = posterior @ grid.pow(2) - mean.pow(2)
    return mean, var.clamp_min(0).sqrt()


def predict_proba(a: torch.Tensor, b: torch.Tensor, posterior: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Posterior predictive P(correct) on every item: [S, G] posterior -> [S, num_items].

    P(y_i = 1 | answers) = sum_g posterior[g] * sigmoid(a_i (grid[g] - b_i)).
    """
    p_grid = torch.sigmoid(a.double().unsqueeze(0) * (grid.unsqueeze(1) - b.double().unsqueeze(0)))  # [G, I]
    return (posterior @ p_grid).float()


def fisher_information(a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Fisher information a_i^2 p_i (1 - p_i) at ``theta``: [S] -> [S, num_items] (0-d -> [num_items])."""
    p = torch.sigmoid(a * (theta.unsqueeze(-1) - b))
    return a.pow(2) * p * (1 - p)


def select_max_information(
    a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor, available: torch.Tensor
) -> torch.Tensor:
    """The available item with the largest Fisher information at ``theta`` (CAT's next item).

    Args:
        a, b: [num_items].
        theta: [S] current ability estimates.
        available: [S, num_items] bool, False for answered or unobservable items.

    Returns:
        [S] long item indices (-1 where nothing is available).
    """
    info = fisher_information(a.double(), b.double(), theta.double())
    info = info.masked_fill(~available, -1.0)
    best = info.argmax(-1)
    return torch.where(available.any(-1), best, torch.full_like(best, -1))


def adaptive_items(
    a: torch.Tensor,
    b: torch.Tensor,
    answers: torch.Tensor,
    num_items: int,
    grid: torch.Tensor,
    prior: torch.Tensor,
) -> torch.Tensor:
    """Run CAT for ``num_items`` steps on students whose full answers are known.

    Each step: posterior from the answers so far, EAP ability, then the max-information item
    among the ones not yet given and observed for that student.

    Args:
        answers: [S, num_items_total] 0/1 with NaN for missing (unobserved items are never chosen).

    Returns:
        [S, num_items] long, the items in the order CAT gives them.
    """
    num_students = answers.shape[0]
    available = ~torch.isnan(answers)
    chosen = torch.empty(num_students, 0, dtype=torch.long)
    logpost = prior.double().clamp_min(1e-300).log().unsqueeze(0).expand(num_students, -1).clone()
    p_grid = torch.sigmoid(a.double().unsqueeze(0) * (grid.unsqueeze(1) - b.double().unsqueeze(0)))  # [G, I]
    rows = torch.arange(num_students)
    for _ in range(num_items):
        post = torch.softmax(logpost, -1)
        theta_hat = post @ grid
        nxt = select_max_information(a, b, theta_hat, available)
        if (nxt < 0).any():
            raise ValueError(f"a student has fewer than {num_items} observed items")
        y = answers[rows, nxt].double()
        p = p_grid[:, nxt].T  # [S, G]
        logpost = logpost + torch.where(y.unsqueeze(1) > 0.5, p, 1 - p).clamp_min(1e-300).log()
        available[rows, nxt] = False
        chosen = torch.cat([chosen, nxt.unsqueeze(1)], 1)
    return chosen
