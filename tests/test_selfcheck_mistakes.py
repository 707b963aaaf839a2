"""Every question's self-check catches the mistakes a careful student might make.

For each question, plausible wrong answers (the ones the question text or hint warns about,
and classic slips) run without error and must FAIL the visible check, so a student is not
told "all visible tests pass" and then loses the points in the grader.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite.grading.questions import ASSIGNMENTS
from metalearn_lite.grading.selfcheck import check


def _mse(params, x, y):
    w, b = params
    return ((x @ w + b - y) ** 2).mean()


# --- 1.x MAML
def update_plus(params, grads, inner_lr):
    return [p + inner_lr * g for p, g in zip(params, grads)]


def update_ignores_lr(params, grads, inner_lr):
    return [p - g for p, g in zip(params, grads)]


def meta_gradient_without_create_graph(params, support_x, support_y, query_x, query_y, inner_lr):
    grads = torch.autograd.grad(_mse(params, support_x, support_y), params)  # second order lost
    adapted = [p - inner_lr * g for p, g in zip(params, grads)]
    return list(torch.autograd.grad(_mse(adapted, query_x, query_y), params))


def meta_gradient_no_adaptation(params, support_x, support_y, query_x, query_y, inner_lr):
    return list(torch.autograd.grad(_mse(params, query_x, query_y), params))


def first_order_but_second_order(params, support_x, support_y, query_x, query_y, inner_lr):
    grads = torch.autograd.grad(_mse(params, support_x, support_y), params, create_graph=True)
    adapted = [p - inner_lr * g for p, g in zip(params, grads)]
    return list(torch.autograd.grad(_mse(adapted, query_x, query_y), params))


def first_order_support_gradient(params, support_x, support_y, query_x, query_y, inner_lr):
    return list(torch.autograd.grad(_mse(params, support_x, support_y), params))


# --- 2.x prototypical networks
def prototypes_by_reshape(support_emb, support_y, num_ways):
    return support_emb.reshape(num_ways, -1, support_emb.shape[1]).mean(dim=1)  # assumes sorted labels


def prototypes_sum(support_emb, support_y, num_ways):
    return torch.stack([support_emb[support_y == k].sum(dim=0) for k in range(num_ways)])


def logits_without_minus(query_emb, prototypes):
    return ((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)


def logits_not_squared(query_emb, prototypes):
    return -torch.cdist(query_emb, prototypes)


def _logits(query_emb, prototypes):
    return -((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)


def loss_with_distances_as_logits(query_emb, query_y, prototypes):
    logits = -_logits(query_emb, prototypes)
    return F.cross_entropy(logits, query_y), (logits.argmax(-1) == query_y).double().mean()


def accuracy_as_count(query_emb, query_y, prototypes):
    logits = _logits(query_emb, prototypes)
    return F.cross_entropy(logits, query_y), (logits.argmax(-1) == query_y).double().sum()


def loss_summed(query_emb, query_y, prototypes):
    logits = _logits(query_emb, prototypes)
    return F.cross_entropy(logits, query_y, reduction="sum"), (logits.argmax(-1) == query_y).double().mean()


# --- 3.x neural processes
def aggregate_sum(r_i):
    return r_i.sum(dim=1)


def aggregate_last_axis(r_i):
    return r_i.mean(dim=-1)


def loglik_without_constant(target_y, mean, std):
    return (-torch.log(std) - (target_y - mean) ** 2 / (2 * std ** 2)).sum(dim=(1, 2))


def loglik_std_as_variance(target_y, mean, std):
    var = std
    return (-0.5 * math.log(2 * math.pi) - 0.5 * torch.log(var) - (target_y - mean) ** 2 / (2 * var)).sum(dim=(1, 2))


def loglik_mean_over_targets(target_y, mean, std):
    lp = -0.5 * math.log(2 * math.pi) - torch.log(std) - (target_y - mean) ** 2 / (2 * std ** 2)
    return lp.mean(dim=(1, 2))


def _kl(mu_q, std_q, mu_p, std_p):
    return (torch.log(std_p / std_q) + (std_q ** 2 + (mu_q - mu_p) ** 2) / (2 * std_p ** 2) - 0.5).sum(-1)


def kl_reversed(mu_q, std_q, mu_p, std_p):
    return _kl(mu_p, std_p, mu_q, std_q)


def kl_without_half(mu_q, std_q, mu_p, std_p):
    return (torch.log(std_p / std_q) + (std_q ** 2 + (mu_q - mu_p) ** 2) / (2 * std_p ** 2)).sum(-1)


def _loglik(target_y, mean, std):
    return (-0.5 * math.log(2 * math.pi) - torch.log(std) - (target_y - mean) ** 2 / (2 * std ** 2)).sum(dim=(1, 2))


def elbo_plus_kl(target_y, mean, std, mu_q, std_q, mu_p, std_p):
    return _loglik(target_y, mean, std) + _kl(mu_q, std_q, mu_p, std_p)


def elbo_kl_reversed(target_y, mean, std, mu_q, std_q, mu_p, std_p):
    return _loglik(target_y, mean, std) - _kl(mu_p, std_p, mu_q, std_q)


# --- 4.x education (item response theory)
def irt_missing_parentheses(a, b, theta):
    return torch.sigmoid(a[None, :] * theta[:, None] - b[None, :])


def irt_items_by_students(a, b, theta):
    return torch.sigmoid(a[:, None] * (theta[None, :] - b[:, None]))  # [I, S]


def posterior_plain_product(a, b, answers, grid, prior):
    p = torch.sigmoid(a[:, None] * (grid[None, :] - b[:, None]))
    likelihood = (p ** answers[:, None] * (1 - p) ** (1 - answers[:, None])).prod(dim=0)
    unnormalised = prior * likelihood
    return unnormalised / unnormalised.sum()  # 0/0 when the product underflows


def posterior_without_prior(a, b, answers, grid, prior):
    logits = a[:, None] * (grid[None, :] - b[:, None])
    loglik = (answers[:, None] * F.logsigmoid(logits) + (1 - answers[:, None]) * F.logsigmoid(-logits)).sum(0)
    return torch.softmax(loglik, dim=0)


def _p(a, b, theta):
    return torch.sigmoid(a[None, :] * (theta[:, None] - b[None, :]))


def information_without_a_squared(a, b, theta):
    p = _p(a, b, theta)
    return a[None, :] * p * (1 - p)


def information_without_a(a, b, theta):
    p = _p(a, b, theta)
    return p * (1 - p)


def _info(a, b, theta_hat):
    p = _p(a, b, theta_hat.reshape(1))[0]
    return a ** 2 * p * (1 - p)


def next_item_ignores_answered(a, b, theta_hat, answered):
    if bool(answered.all()):
        return torch.tensor(-1)
    return _info(a, b, theta_hat).argmax()


def next_item_never_minus_one(a, b, theta_hat, answered):
    return _info(a, b, theta_hat).masked_fill(answered, -1.0).argmax()


def next_item_least_informative(a, b, theta_hat, answered):
    if bool(answered.all()):
        return torch.tensor(-1)
    return _info(a, b, theta_hat).masked_fill(answered, float("inf")).argmin()


def auc_ordinal_ranks(scores, labels):
    ranks = torch.empty_like(scores)
    ranks[torch.argsort(scores)] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)  # ties not averaged
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_zero_based_ranks(scores, labels):
    ranks = torch.empty_like(scores)
    ranks[torch.argsort(scores)] = torch.arange(len(scores), dtype=scores.dtype)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_ties_count_as_wins(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return (pos[:, None] >= neg[None, :]).double().mean()


# --- 5.x in-context learning (chapter 09)
def sequence_flags_swapped(context_x, context_y, target_x):
    context = torch.cat([context_x, context_y, torch.zeros_like(context_y[..., :1])], -1)
    targets = torch.cat([target_x, torch.zeros_like(target_x), torch.ones_like(target_x[..., :1])], -1)
    return torch.cat([context, targets], 1)


def sequence_zeros_two_wide(context_x, context_y, target_x):  # right only when d_y = 1
    context = torch.cat([context_x, context_y, torch.ones_like(context_y[..., :1])], -1)
    return torch.cat([context, torch.cat([target_x, target_x.new_zeros(*target_x.shape[:2], 2)], -1)], 1)


def sequence_targets_first(context_x, context_y, target_x):
    context = torch.cat([context_x, context_y, torch.ones_like(context_y[..., :1])], -1)
    targets = torch.cat([target_x, target_x.new_zeros(*target_x.shape[:2], context_y.shape[-1] + 1)], -1)
    return torch.cat([targets, context], 1)


def attention_targets_see_each_other(queries, keys, values, num_context):
    return torch.softmax(queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1]), -1) @ values


def attention_causal(queries, keys, values, num_context):
    n = queries.shape[1]
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, -1) @ values


def attention_targets_see_themselves(queries, keys, values, num_context):
    n = queries.shape[1]
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[:, :num_context] = True
    allowed |= torch.eye(n, dtype=torch.bool)
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ values


def attention_unscaled(queries, keys, values, num_context):
    scores = queries @ keys[:, :num_context].transpose(1, 2)
    return torch.softmax(scores, -1) @ values[:, :num_context]


def _icl_loglik(target_y, mean, sigma):
    return -0.5 * math.log(2 * math.pi) - torch.log(sigma) - 0.5 * ((target_y - mean) / sigma) ** 2


def loglik_summed_over_targets(target_y, mean, raw_std, min_std):
    return _icl_loglik(target_y, mean, min_std + (1 - min_std) * F.softplus(raw_std)).sum(dim=(1, 2))


def loglik_without_floor(target_y, mean, raw_std, min_std):
    return _icl_loglik(target_y, mean, F.softplus(raw_std)).sum(-1).mean(-1)


def loglik_mean_over_output_dims(target_y, mean, raw_std, min_std):
    return _icl_loglik(target_y, mean, min_std + (1 - min_std) * F.softplus(raw_std)).mean(dim=(1, 2))


def episode_one_hot_from_labels(support_features, support_labels, query_features, num_ways):
    one_hot = F.one_hot(support_labels).to(support_features.dtype)  # as wide as the labels that occur
    support = torch.cat([support_features, one_hot, torch.ones_like(support_features[..., :1])], -1)
    empty = query_features.new_zeros(*query_features.shape[:2], one_hot.shape[-1] + 1)
    return torch.cat([support, torch.cat([query_features, empty], -1)], 1)


def episode_query_flag_one(support_features, support_labels, query_features, num_ways):
    one_hot = F.one_hot(support_labels, num_ways).to(support_features.dtype)
    support = torch.cat([support_features, one_hot, torch.ones_like(support_features[..., :1])], -1)
    query = torch.cat([query_features, query_features.new_zeros(*query_features.shape[:2], num_ways),
                       torch.ones_like(query_features[..., :1])], -1)
    return torch.cat([support, query], 1)


def _gp_ll(cx, cy, tx, ty, lengthscale, scale, noise, with_noise=True):
    k = lambda a, b: scale ** 2 * torch.exp(-((a - b.transpose(1, 2)) ** 2) / (2 * lengthscale ** 2))
    k_cc = k(cx, cx) + noise ** 2 * torch.eye(cx.shape[1], dtype=cx.dtype)
    k_tc = k(tx, cx)
    mean = (k_tc @ torch.linalg.solve(k_cc, cy))[..., 0]
    var = scale ** 2 - (k_tc * torch.linalg.solve(k_cc, k_tc.transpose(1, 2)).transpose(1, 2)).sum(-1)
    var = var + noise ** 2 if with_noise else var.clamp_min(1e-12)
    return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (ty[..., 0] - mean) ** 2 / var)


def _model_ll(ty, mean, std):
    return _icl_loglik(ty, mean, std).sum(-1)


def gap_reversed(cx, cy, tx, ty, mean, std, lengthscale, scale, noise):
    return _model_ll(ty, mean, std).mean(-1) - _gp_ll(cx, cy, tx, ty, lengthscale, scale, noise).mean(-1)


def gap_oracle_without_target_noise(cx, cy, tx, ty, mean, std, lengthscale, scale, noise):
    return (_gp_ll(cx, cy, tx, ty, lengthscale, scale, noise, with_noise=False).mean(-1)
            - _model_ll(ty, mean, std).mean(-1))


def gap_default_kernel(cx, cy, tx, ty, mean, std, lengthscale, scale, noise):
    return _gp_ll(cx, cy, tx, ty, 0.4, 1.0, 0.05).mean(-1) - _model_ll(ty, mean, std).mean(-1)


def gap_summed_over_targets(cx, cy, tx, ty, mean, std, lengthscale, scale, noise):
    return _gp_ll(cx, cy, tx, ty, lengthscale, scale, noise).sum(-1) - _model_ll(ty, mean, std).sum(-1)


MISTAKES = {
    "1.1": [update_plus, update_ignores_lr],
    "1.2": [meta_gradient_without_create_graph, meta_gradient_no_adaptation],
    "1.3": [first_order_but_second_order, first_order_support_gradient],
    "2.1": [prototypes_by_reshape, prototypes_sum],
    "2.2": [logits_without_minus, logits_not_squared],
    "2.3": [loss_with_distances_as_logits, accuracy_as_count, loss_summed],
    "3.1": [aggregate_sum, aggregate_last_axis],
    "3.2": [loglik_without_constant, loglik_std_as_variance, loglik_mean_over_targets],
    "3.3": [kl_reversed, kl_without_half],
    "3.4": [elbo_plus_kl, elbo_kl_reversed],
    "4.1": [irt_missing_parentheses, irt_items_by_students],
    "4.2": [posterior_plain_product, posterior_without_prior],
    "4.3": [information_without_a_squared, information_without_a],
    "4.4": [next_item_ignores_answered, next_item_never_minus_one, next_item_least_informative],
    "4.5": [auc_ordinal_ranks, auc_zero_based_ranks, auc_ties_count_as_wins],
    "5.1": [sequence_flags_swapped, sequence_zeros_two_wide, sequence_targets_first],
    "5.2": [attention_targets_see_each_other, attention_causal, attention_targets_see_themselves,
            attention_unscaled],
    "5.3": [loglik_summed_over_targets, loglik_without_floor, loglik_mean_over_output_dims],
    "5.4": [episode_one_hot_from_labels, episode_query_flag_one],
    "5.5": [gap_reversed, gap_oracle_without_target_noise, gap_default_kernel, gap_summed_over_targets],
}


def test_every_question_has_mistakes_to_catch():
    assert sorted(MISTAKES) == sorted(q.qid for qs in ASSIGNMENTS.values() for q in qs)


@pytest.mark.parametrize("qid, wrong", [(qid, fn) for qid, fns in MISTAKES.items() for fn in fns],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_a_plausible_wrong_answer_fails_the_visible_check(qid, wrong):
    report = check(qid, wrong, verbose=False)
    assert report.answered
    assert not report.ok, f"{wrong.__name__} passes every visible test of {qid}"
    assert "Hint:" in repr(report)
