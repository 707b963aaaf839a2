"""The public side of each homework: questions, points, function names and visible tests.

Students' self-checks and the grader both read this module. It holds nothing secret:
the reference code (``solutions/``) and the hidden tests (``solutions/hidden_tests/``) are
not part of the installed package; the grader reads them from the instructor's private
assignment folder (``metalearn homework private DIR``), whose hidden inputs are drawn
from a per-term seed (``case_seed``).

Visible test inputs are built here from fixed seeds; their expected outputs are stored
in ``assignments/<name>/visible_expected.json`` (written from the reference by
``metalearn homework generate``; a test proves the two agree).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

__all__ = ["Question", "VisibleCase", "ASSIGNMENTS", "question", "visible_cases",
           "visible_expected", "visible_expected_path", "case_seed"]


def visible_expected_path(name: str) -> Path:
    """Where the visible tests' expected outputs of assignment ``name`` are stored."""
    return Path(__file__).with_name("assignments") / name / "visible_expected.json"


@dataclass(frozen=True)
class Question:
    """One graded question: ``qid`` like "1.2", the function the student writes, points."""

    qid: str
    function: str
    points: float
    title: str
    hint: str
    rtol: float = 1e-5
    atol: float = 1e-7


@dataclass(frozen=True)
class VisibleCase:
    """A visible test: ``build()`` returns the call's positional arguments."""

    name: str
    build: Callable[[], list]


ASSIGNMENTS: dict[str, list[Question]] = {
    "maml": [
        Question("1.1", "inner_update", 3, "One inner-loop step",
                 "theta' = theta - inner_lr * grad, applied to every tensor in the list; "
                 "return a list of tensors with the same shapes as params."),
        Question("1.2", "maml_meta_gradient", 4, "Second-order meta-gradient",
                 "Take the support gradient with torch.autograd.grad(..., create_graph=True) "
                 "so the query loss can be differentiated through the inner step, then "
                 "return d query_loss / d params (one tensor per parameter)."),
        Question("1.3", "first_order_meta_gradient", 3, "First-order MAML",
                 "Treat the support gradient as a constant (no create_graph): the "
                 "meta-gradient is the query-loss gradient at the adapted parameters."),
    ],
    "protonet": [
        Question("2.1", "compute_prototypes", 3, "Class prototypes",
                 "Prototype c_k is the mean of the support embeddings whose label is k; "
                 "labels are not necessarily sorted. Output: [num_ways, D]."),
        Question("2.2", "squared_euclidean_logits", 3, "Distance logits",
                 "logits[q, k] = -||query_emb[q] - prototypes[k]||^2 (note the minus "
                 "sign and the square). Output: [num_queries, num_ways]."),
        Question("2.3", "episode_loss_and_accuracy", 4, "Episode loss and accuracy",
                 "Cross-entropy of the distance logits against query_y (mean over "
                 "queries) and the fraction of queries whose nearest prototype is right; "
                 "return (loss, accuracy)."),
    ],
    "np": [
        Question("3.1", "aggregate", 2, "Mean aggregation",
                 "Average the context representations over the context axis: "
                 "[B, num_context, d_r] -> [B, d_r]."),
        Question("3.2", "gaussian_log_likelihood", 3, "Gaussian log-likelihood",
                 "log N(y; mean, std^2) = -0.5*log(2*pi) - log(std) - (y-mean)^2/(2 std^2), "
                 "summed over targets and output dimensions: [B, num_target, d_y] -> [B]."),
        Question("3.3", "kl_diag_gaussians", 3, "KL between diagonal Gaussians",
                 "KL(q||p) = log(std_p/std_q) + (std_q^2 + (mu_q-mu_p)^2)/(2 std_p^2) - 1/2, "
                 "summed over the latent dimension: [B, d_z] -> [B]."),
        Question("3.4", "elbo", 2, "The neural-process ELBO",
                 "ELBO = log-likelihood of the targets - KL(q(z|context, target) || "
                 "p(z|context)), per task: [B]."),
    ],    "education": [
        Question("4.1", "irt_probability", 2, "The 2PL item response function",
                 "P(correct) = sigmoid(a_i * (theta_s - b_i)) for every student s and item i: "
                 "a [I], b [I], theta [S] -> [S, I] (broadcast, no loops needed)."),
        Question("4.2", "ability_posterior", 3, "Ability posterior on a grid",
                 "posterior[g] is proportional to prior[g] * prod_k p_k(grid[g])^y_k (1 - p_k(grid[g]))^(1 - y_k). "
                 "Work with log-probabilities (F.logsigmoid(x) = log p, F.logsigmoid(-x) = log(1 - p)) "
                 "and normalise with a softmax: with many answers the plain product underflows to 0. "
                 "Output [G], summing to 1."),
        Question("4.3", "fisher_information", 2, "Fisher information of an item",
                 "I_i(theta) = a_i^2 * p_i(theta) * (1 - p_i(theta)), with p from 4.1: "
                 "a [I], b [I], theta [S] -> [S, I]."),
        Question("4.4", "next_item", 2, "The most informative next question",
                 "Among the items not yet answered (answered[i] is False), the index with the largest "
                 "Fisher information at theta_hat, as a 0-d long tensor; -1 when every item is answered."),
        Question("4.5", "rank_auc", 3, "AUC from ranks",
                 "AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), where R_pos sums the ranks "
                 "(1 = lowest score) of the positives and tied scores share their average rank. "
                 "Return a 0-d float tensor."),
    ],
    "in_context": [
        Question("5.1", "regression_sequence", 2, "Context and target tokens in one sequence",
                 "Context rows [x_i, y_i, 1], then target rows [x_t, 0 (d_y zeros), 0]: "
                 "[B, n_c + n_t, d_x + d_y + 1], context first. The zeros are d_y wide, "
                 "whatever d_y is; keep the inputs' dtype."),
        Question("5.2", "context_attention", 3, "Attention to the context only",
                 "Every row (context and target) attends to the first num_context rows only: "
                 "softmax(q k_C^T / sqrt(d)) v_C with k_C = keys[:, :num_context], "
                 "v_C = values[:, :num_context]. No target sees another target, no row sees a "
                 "target, and nothing is causal: [B, n, d] -> [B, n, d]."),
        Question("5.3", "predictive_log_likelihood", 2, "Log-likelihood per target point",
                 "std = min_std + (1 - min_std) * softplus(raw_std); log N(y; mean, std^2) summed "
                 "over the output dimension d_y, then the MEAN over the n_t targets (chapter 04's "
                 "convention): [B, n_t, d_y] -> [B]."),
        Question("5.4", "episode_sequence", 2, "An N-way K-shot episode as one sequence",
                 "Support rows [f_i, one_hot(y_i, num_ways), 1], then query rows [f_q, num_ways "
                 "zeros, 0] (the query's label is hidden): [B, N*K + n_q, d + num_ways + 1]. The "
                 "one-hot is num_ways wide whatever labels occur, labels in any order."),
        Question("5.5", "oracle_gap", 3, "The gap to the exact GP oracle",
                 "Oracle: mean = K_tc (K_cc + noise^2 I)^-1 y_c, var = scale^2 - diag(K_tc (K_cc + "
                 "noise^2 I)^-1 K_ct) + noise^2, with k(x, x') = scale^2 exp(-|x - x'|^2 / (2 "
                 "lengthscale^2)) and the GIVEN hyperparameters. Gap = oracle's mean log-likelihood "
                 "per target minus the model's (mean over targets): [B]. No jitter is needed.",
                 rtol=1e-3, atol=1e-4),
    ],
}


def question(qid: str) -> tuple[str, Question]:
    """``(assignment name, Question)`` for a question id like "2.1"."""
    for name, questions in ASSIGNMENTS.items():
        for q in questions:
            if q.qid == qid:
                return name, q
    known = ", ".join(q.qid for qs in ASSIGNMENTS.values() for q in qs)
    raise KeyError(f"unknown question {qid!r}; expected one of {known}")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g, *shape, requires_grad=False):
    t = torch.randn(*shape, generator=g, dtype=torch.float64)
    return t.requires_grad_(True) if requires_grad else t


def _maml_task(seed: int, dim: int, n_support: int, n_query: int, grad: bool):
    g = _gen(seed)
    w = _randn(g, dim, 1, requires_grad=grad)
    b = _randn(g, 1, requires_grad=grad)
    support_x, query_x = _randn(g, n_support, dim), _randn(g, n_query, dim)
    true_w = _randn(g, dim, 1)
    support_y = support_x @ true_w + 0.1 * _randn(g, n_support, 1)
    query_y = query_x @ true_w + 0.1 * _randn(g, n_query, 1)
    return [w, b], support_x, support_y, query_x, query_y


def _episode(seed: int, num_ways: int, num_shots: int, num_queries: int, dim: int,
             shuffle: bool):
    g = _gen(seed)
    support_y = torch.arange(num_ways).repeat_interleave(num_shots)
    if shuffle:
        support_y = support_y[torch.randperm(len(support_y), generator=g)]
    centers = 2.0 * _randn(g, num_ways, dim)
    support_emb = centers[support_y] + _randn(g, len(support_y), dim)
    query_y = torch.arange(num_ways).repeat_interleave(num_queries)
    query_emb = centers[query_y] + 1.5 * _randn(g, len(query_y), dim)
    return support_emb, support_y, query_emb, query_y


def _positive(g, *shape):
    return torch.nn.functional.softplus(_randn(g, *shape)) + 0.05


def _np_case(seed: int, batch: int, num_target: int, d_y: int, d_z: int):
    g = _gen(seed)
    target_y, mean = _randn(g, batch, num_target, d_y), _randn(g, batch, num_target, d_y)
    std = _positive(g, batch, num_target, d_y)
    mu_q, std_q = _randn(g, batch, d_z), _positive(g, batch, d_z)
    mu_p, std_p = _randn(g, batch, d_z), _positive(g, batch, d_z)
    return target_y, mean, std, mu_q, std_q, mu_p, std_p


def _maml_update_args(seed, inner_lr=0.1):
    params, *_ = _maml_task(seed, 3, 4, 4, grad=False)
    g = _gen(seed + 1)
    return [params, [_randn(g, *p.shape) for p in params], inner_lr]


def _maml_grad_args(seed, dim, n_support, n_query, inner_lr):
    params, sx, sy, qx, qy = _maml_task(seed, dim, n_support, n_query, grad=True)
    return [params, sx, sy, qx, qy, inner_lr]


def _proto_args(seed, ways, shots, queries, dim, shuffle, which):
    support_emb, support_y, query_emb, query_y = _episode(seed, ways, shots, queries, dim, shuffle)
    if which == "prototypes":
        return [support_emb, support_y, ways]
    prototypes = torch.stack([support_emb[support_y == k].mean(0) for k in range(ways)])
    if which == "logits":
        return [query_emb, prototypes]
    return [query_emb, query_y, prototypes]


def _np_args(seed, which):
    target_y, mean, std, mu_q, std_q, mu_p, std_p = _np_case(seed, 2, 5, 1, 3)
    if which == "aggregate":
        return [_randn(_gen(seed), 2, 6, 4)]
    if which == "loglik":
        return [target_y, mean, std]
    if which == "kl":
        return [mu_q, std_q, mu_p, std_p]
    return [target_y, mean, std, mu_q, std_q, mu_p, std_p]


def _edu_items(g, num_items):
    a = torch.nn.functional.softplus(_randn(g, num_items)) + 0.3      # discriminations > 0
    b = 1.2 * _randn(g, num_items)                                      # difficulties
    return a, b


def _edu_args(seed, which, num_students=3, num_items=4, num_answers=5, grid_points=9):
    g = _gen(seed)
    if which in ("probability", "information"):
        theta = 1.5 * _randn(g, num_students)
        return [*_edu_items(g, num_items), theta]
    if which == "posterior":
        grid = torch.linspace(-3.0, 3.0, grid_points, dtype=torch.float64)
        prior = torch.exp(-0.5 * grid ** 2)
        a, b = _edu_items(g, num_answers)
        answers = (torch.rand(num_answers, generator=g, dtype=torch.float64) < 0.5).double()
        return [a, b, answers, grid, prior / prior.sum()]
    if which == "next":
        a, b = _edu_items(g, num_items)
        answered = torch.rand(num_items, generator=g) < 0.4
        return [a, b, 1.5 * _randn(g, 1)[0], answered]
    labels = (torch.arange(num_items) % 2).double()[torch.randperm(num_items, generator=g)]
    scores = torch.round(labels + _randn(g, num_items), decimals=1)  # rounding makes some ties
    return [scores, labels]


def _edu_many_answers(seed, num_answers, grid_points=41):
    """Many answers to sharp items, half of them surprising: the product of the answer
    probabilities underflows float64 at every grid point (a plain product gives 0/0)."""
    _, _, _, grid, prior = _edu_args(seed, "posterior", grid_points=grid_points)
    g = _gen(seed)
    a = 2.5 + torch.rand(num_answers, generator=g, dtype=torch.float64)
    b = 2.0 * _randn(g, num_answers)
    answers = (torch.rand(num_answers, generator=g, dtype=torch.float64) < 0.5).double()
    return [a, b, answers, grid, prior]


def _edu_best_answered(seed, num_items):
    """``next_item`` arguments where the most informative item overall is already answered."""
    a, b, theta, _ = _edu_args(seed, "next", num_items=num_items)
    p = torch.sigmoid(a * (theta - b))
    answered = torch.zeros(num_items, dtype=torch.bool)
    answered[int((a ** 2 * p * (1 - p)).argmax())] = True
    return [a, b, theta, answered]


def _edu_all_answered(seed, num_items):
    """``next_item`` arguments where every item is answered (the answer is -1)."""
    a, b, theta, _ = _edu_args(seed, "next", num_items=num_items)
    return [a, b, theta, torch.ones(num_items, dtype=torch.bool)]


def _icl_sizes_tensors(g, batch, n_c, n_t, d_x, d_y):
    return _randn(g, batch, n_c, d_x), _randn(g, batch, n_c, d_y), _randn(g, batch, n_t, d_x)


def _icl_args(seed: int, which: str, batch: int = 2, n_c: int = 4, n_t: int = 3, d_x: int = 1,
              d_y: int = 1, d: int = 4, num_ways: int = 3, num_shots: int = 2, min_std: float = 0.1):
    """Inputs of homework 5 (in-context learning, chapter 09) for one case."""
    g = _gen(seed)
    if which == "tokens":
        return list(_icl_sizes_tensors(g, batch, n_c, n_t, d_x, d_y))
    if which == "attention":
        n = n_c + n_t
        return [_randn(g, batch, n, d), _randn(g, batch, n, d), _randn(g, batch, n, d), n_c]
    if which == "loglik":
        target_y, mean = _randn(g, batch, n_t, d_y), _randn(g, batch, n_t, d_y)
        return [target_y, mean, _randn(g, batch, n_t, d_y), min_std]
    if which == "episode":
        labels = torch.stack([torch.arange(num_ways).repeat_interleave(num_shots)[
            torch.randperm(num_ways * num_shots, generator=g)] for _ in range(batch)])
        return [_randn(g, batch, num_ways * num_shots, d), labels, _randn(g, batch, n_t, d)]
    raise KeyError(which)


def _gp_gap_args(seed: int, batch: int = 2, n_c: int = 5, n_t: int = 8, lengthscale: float = 0.4,
                 scale: float = 1.0, noise: float = 0.05):
    """``oracle_gap`` inputs: GP curves drawn with the given kernel, a model's (imperfect)
    predictive mean and std at the targets, and the kernel's hyperparameters."""
    g = _gen(seed)
    x = 4 * torch.rand(batch, n_c + n_t, 1, generator=g, dtype=torch.float64) - 2
    sq = (x - x.transpose(1, 2)) ** 2
    cov = scale ** 2 * torch.exp(-0.5 * sq / lengthscale ** 2) + (noise ** 2 + 1e-9) * torch.eye(n_c + n_t)
    y = torch.linalg.cholesky(cov) @ _randn(g, batch, n_c + n_t, 1)
    mean = y[:, n_c:] + 0.3 * scale * _randn(g, batch, n_t, 1)
    std = _positive(g, batch, n_t, 1) * scale
    return [x[:, :n_c], y[:, :n_c], x[:, n_c:], y[:, n_c:], mean, std, lengthscale, scale, noise]


def case_seed(term_seed: int, qid: str, index: int) -> int:
    """Seed of hidden case ``index`` of question ``qid`` in the term drawn with ``term_seed``.

    Hidden-test files (in the instructor's private folder) build their inputs from these
    seeds, so a new term seed gives new hidden inputs and last term's answers fail.
    """
    digest = hashlib.sha256(f"{int(term_seed)}:{qid}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


VISIBLE: dict[str, list[VisibleCase]] = {
    "1.1": [VisibleCase("two tensors, inner_lr=0.1", lambda: _maml_update_args(11)),
            VisibleCase("two tensors, inner_lr=0.5", lambda: _maml_update_args(14, 0.5))],
    "1.2": [VisibleCase("2-d inputs, 5 support / 5 query points",
                        lambda: _maml_grad_args(12, 2, 5, 5, 0.1)),
            VisibleCase("3-d inputs, inner_lr=0.3", lambda: _maml_grad_args(13, 3, 4, 6, 0.3))],
    "1.3": [VisibleCase("2-d inputs, 5 support / 5 query points",
                        lambda: _maml_grad_args(12, 2, 5, 5, 0.1)),
            VisibleCase("3-d inputs, inner_lr=0.3", lambda: _maml_grad_args(13, 3, 4, 6, 0.3))],
    "2.1": [VisibleCase("3-way 2-shot, sorted labels",
                        lambda: _proto_args(21, 3, 2, 2, 4, False, "prototypes")),
            VisibleCase("2-way 3-shot, sorted labels",
                        lambda: _proto_args(22, 2, 3, 2, 5, False, "prototypes")),
            VisibleCase("4-way 2-shot, labels in any order (shuffled)",
                        lambda: _proto_args(27, 4, 2, 2, 3, True, "prototypes"))],
    "2.2": [VisibleCase("3-way, 6 queries", lambda: _proto_args(23, 3, 2, 2, 4, False, "logits")),
            VisibleCase("5-way, 5 queries", lambda: _proto_args(24, 5, 1, 1, 8, False, "logits"))],
    "2.3": [VisibleCase("3-way, 6 queries", lambda: _proto_args(25, 3, 2, 2, 4, False, "loss")),
            VisibleCase("4-way, 12 queries", lambda: _proto_args(26, 4, 2, 3, 6, False, "loss"))],
    "3.1": [VisibleCase("2 tasks, 6 context points", lambda: _np_args(31, "aggregate"))],
    "3.2": [VisibleCase("2 tasks, 5 targets", lambda: _np_args(32, "loglik"))],
    "3.3": [VisibleCase("2 tasks, 3 latent dims", lambda: _np_args(33, "kl")),
            VisibleCase("2 tasks, other seed", lambda: _np_args(34, "kl"))],
    "3.4": [VisibleCase("2 tasks", lambda: _np_args(35, "elbo"))],
    "4.1": [VisibleCase("3 students, 4 items", lambda: _edu_args(41, "probability"))],
    "4.2": [VisibleCase("5 answers, 9-point grid", lambda: _edu_args(42, "posterior")),
            VisibleCase("2 answers, 7-point grid", lambda: _edu_args(43, "posterior", num_answers=2, grid_points=7)),
            VisibleCase("1,500 answers (a plain product underflows to 0)", lambda: _edu_many_answers(47, 1500))],
    "4.3": [VisibleCase("3 students, 4 items", lambda: _edu_args(44, "information"))],
    "4.4": [VisibleCase("6 items, some answered", lambda: _edu_args(48, "next", num_items=6)),
            VisibleCase("the most informative item is already answered", lambda: _edu_best_answered(49, 6)),
            VisibleCase("every item answered (expect -1)", lambda: _edu_all_answered(50, 5))],
    "4.5": [VisibleCase("8 scores, 4 positives", lambda: _edu_args(46, "auc", num_items=8)),
            VisibleCase("tied scores across the classes", lambda: [
                torch.tensor([0.5, 0.5, 0.5, 0.9, 0.2, 0.7], dtype=torch.float64),
                torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)])],
    "5.1": [VisibleCase("2 tasks, 4 context / 3 targets, 1-d x and y", lambda: _icl_args(51, "tokens")),
            VisibleCase("2-d y: the target's zeros are d_y wide",
                        lambda: _icl_args(52, "tokens", batch=1, n_c=2, n_t=3, d_x=1, d_y=2))],
    "5.2": [VisibleCase("3 context + 2 target rows, d = 4", lambda: _icl_args(53, "attention", n_c=3, n_t=2)),
            VisibleCase("2 context + 3 target rows, d = 2",
                        lambda: _icl_args(54, "attention", batch=1, n_c=2, n_t=3, d=2))],
    "5.3": [VisibleCase("2 tasks, 5 targets, d_y = 1, min_std 0.1",
                        lambda: _icl_args(55, "loglik", n_t=5)),
            VisibleCase("d_y = 2 (sum over d_y, mean over targets), min_std 0.001",
                        lambda: _icl_args(56, "loglik", batch=3, n_t=4, d_y=2, min_std=0.001))],
    "5.4": [VisibleCase("3-way 2-shot, shuffled labels, 4 queries",
                        lambda: [*_icl_args(57, "episode", n_t=4), 3]),
            VisibleCase("the same 3-way episode read by a 5-way model (num_ways=5)",
                        lambda: [*_icl_args(57, "episode", n_t=4), 5])],
    "5.5": [VisibleCase("2 tasks, 5 context / 8 targets, lengthscale 0.4, scale 1, noise 0.05",
                        lambda: _gp_gap_args(58)),
            VisibleCase("other hyperparameters: lengthscale 0.8, scale 0.7, noise 0.1",
                        lambda: _gp_gap_args(59, batch=3, n_c=3, n_t=6, lengthscale=0.8, scale=0.7,
                                             noise=0.1))],
}


def visible_cases(qid: str) -> list[VisibleCase]:
    """The visible tests of question ``qid`` (shown in feedback and self-checks)."""
    question(qid)
    return VISIBLE.get(qid, [])


@lru_cache(maxsize=None)
def visible_expected(name: str) -> dict:
    """``{qid: [encoded expected output per visible case]}`` of assignment ``name``."""
    return json.loads(visible_expected_path(name).read_text(encoding="utf-8"))
