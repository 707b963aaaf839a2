"""Homework 5 (in-context learning, chapter 09): the reference agrees with the package and
with torch, the hidden cases test what the questions say, and the real grader gives a
plausible wrong answer (attention that lets targets see each other, a default kernel)
exactly the points it deserves. Full marks for the solution and 0 for the untouched
exercise come from ``test_grader.py`` (every assignment)."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite.algorithms.neural_process import bounded_std, gaussian_log_likelihood
from metalearn_lite.course.checks_in_context import check_episode_tokens
from metalearn_lite.grading.assignment import reference_functions
from metalearn_lite.grading.grader import grade_folder
from metalearn_lite.grading.questions import ASSIGNMENTS, visible_cases
from metalearn_lite.grading.sandbox import Limits
from metalearn_lite.tasks.gp import gp_log_likelihood

REPO = Path(__file__).resolve().parents[1]
SOLUTION = REPO / "solutions" / "hw_in_context.ipynb"
SEED = 31


@pytest.fixture(scope="module")
def ref():
    return reference_functions(SOLUTION)


@pytest.fixture(scope="module")
def hidden():
    spec = importlib.util.spec_from_file_location("_hidden_in_context", REPO / "solutions" / "hidden_tests" / "in_context.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_cases(qid, hidden):
    return [c.build() for c in visible_cases(qid)] + [args for _, args in hidden.hidden_cases(qid, SEED)]


def test_questions_and_points():
    assert [(q.qid, q.function, q.points) for q in ASSIGNMENTS["in_context"]] == [
        ("5.1", "regression_sequence", 2), ("5.2", "context_attention", 3), ("5.3", "predictive_log_likelihood", 2),
        ("5.4", "episode_sequence", 2), ("5.5", "oracle_gap", 3)]


def test_reference_tokens_match_the_packages_layout(ref):
    from metalearn_lite.algorithms import InContextRegressor

    model = InContextRegressor(d_model=8, num_heads=2, num_layers=1, dim_feedforward=8)
    cx, cy, tx = visible_cases("5.1")[0].build()
    assert torch.equal(ref["regression_sequence"](cx, cy, tx), torch.cat(model.tokens(cx, cy, tx), dim=1))


    def split(support_features, support_labels, query_features, num_ways):
        tokens = ref["episode_sequence"](support_features, support_labels, query_features, num_ways)
        return tokens[:, :support_features.shape[1]], tokens[:, support_features.shape[1]:]

    assert check_episode_tokens(split)  # chapter 09's own self-check accepts it, split in two


def test_reference_attention_is_masked_scaled_dot_product_attention(ref, hidden):
    for queries, keys, values, n_c in _all_cases("5.2", hidden):
        mask = torch.zeros(queries.shape[1], keys.shape[1], dtype=torch.bool)
        mask[:, :n_c] = True
        expected = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
        assert torch.allclose(ref["context_attention"](queries, keys, values, n_c), expected, atol=1e-12)


def test_hidden_attention_cases_test_permutation_invariance_and_independent_targets(ref, hidden):
    cases = dict(hidden.hidden_cases("5.2", SEED))
    (q0, k0, v0, n_c), (q1, k1, v1, n_c1) = cases["hidden 0"], cases["hidden 1: the context of hidden 0 permuted"]
    assert n_c1 == n_c and not torch.equal(k0[:, :n_c], k1[:, :n_c])
    out0, out1 = ref["context_attention"](q0, k0, v0, n_c), ref["context_attention"](q1, k1, v1, n_c)
    assert torch.allclose(out0[:, n_c:], out1[:, n_c:], atol=1e-12)  # targets: same answer, any order
    alone = torch.cat([q0[:, :n_c], q0[:, n_c:n_c + 1]], dim=1)
    one = ref["context_attention"](alone, k0[:, :n_c + 1], v0[:, :n_c + 1], n_c)
    assert torch.allclose(one[:, -1], out0[:, n_c], atol=1e-12)      # a target alone = among others


def test_reference_loglik_and_oracle_gap_agree_with_the_package(ref, hidden):
    for target_y, mean, raw, min_std in _all_cases("5.3", hidden):
        expected = gaussian_log_likelihood(target_y, mean, bounded_std(raw, min_std)).sum(-1).mean(-1)
        assert torch.allclose(ref["predictive_log_likelihood"](target_y, mean, raw, min_std), expected, atol=1e-10)
    for cx, cy, tx, ty, mean, std, lengthscale, scale, noise in _all_cases("5.5", hidden):
        oracle = gp_log_likelihood(cx, cy, tx, ty, lengthscale, scale, noise)
        model = gaussian_log_likelihood(ty, mean, std).sum(-1).mean(-1)
        got = ref["oracle_gap"](cx, cy, tx, ty, mean, std, lengthscale, scale, noise)
        assert torch.allclose(got, oracle - model, rtol=1e-6, atol=1e-6)


def test_hidden_inputs_differ_from_the_visible_ones_and_across_terms(hidden):
    for q in ASSIGNMENTS["in_context"]:
        spring, fall = hidden.hidden_cases(q.qid, 1), hidden.hidden_cases(q.qid, 2)
        assert len(spring) >= 4
        for (_, a), (_, b) in zip(spring, fall):
            assert any(isinstance(x, torch.Tensor) and not torch.equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------- the real grader
def _solution_source() -> str:
    cells = json.loads(SOLUTION.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "check(" not in "".join(c["source"])]
    return "\n\n".join(code[1:])  # without the Colab set-up cell


LEAKY_ATTENTION = '''
def context_attention(queries, keys, values, num_context):
    # plain self-attention: targets see each other and the context sees the targets
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    return torch.softmax(scores, dim=-1) @ values
'''

DEFAULT_KERNEL = '''
_right_gap = oracle_gap
def oracle_gap(context_x, context_y, target_x, target_y, mean, std, lengthscale, scale, noise):
    # ignores the given kernel: the package's default GP curves (0.4, 1.0, 0.05)
    return _right_gap(context_x, context_y, target_x, target_y, mean, std, 0.4, 1.0, 0.05)
'''

SUMMED_LOGLIK = '''
def predictive_log_likelihood(target_y, mean, raw_std, min_std):
    sigma = min_std + (1 - min_std) * F.softplus(raw_std)
    lp = -0.5 * math.log(2 * math.pi) - torch.log(sigma) - 0.5 * ((target_y - mean) / sigma) ** 2
    return lp.sum(dim=(1, 2))  # homework 3's convention: the sum over targets
'''


def test_grader_takes_exactly_the_wrong_questions_points(tmp_path, private_assignments):
    subs = tmp_path / "subs"
    subs.mkdir()
    base = _solution_source()
    (subs / "leaky_attention.py").write_text(base + "\n" + LEAKY_ATTENTION)
    (subs / "two_slips.py").write_text(base + "\n" + DEFAULT_KERNEL + "\n" + SUMMED_LOGLIK)
    out = tmp_path / "out"
    grade_folder(subs, "in_context", out, jobs=2, limits=Limits(timeout=90, call_timeout=20), progress=False)
    with open(out / "grades.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    leaky, slips = rows["leaky_attention"], rows["two_slips"]
    assert leaky["status"] == slips["status"] == "ok"
    assert float(leaky["max_points"]) == 12
    assert {k: float(leaky[f"q{k}"]) for k in ("5.1", "5.2", "5.3", "5.4", "5.5")} == {
        "5.1": 2, "5.2": 0, "5.3": 2, "5.4": 2, "5.5": 3}
    assert {k: float(slips[f"q{k}"]) for k in ("5.1", "5.2", "5.3", "5.4", "5.5")} == {
        "5.1": 2, "5.2": 3, "5.3": 0, "5.4": 2, "5.5": 0}
    record = json.loads((out / "students" / "two_slips.json").read_text())
    visible = {t["name"]: t["status"] for t in record["tests"] if t["question"] == "5.5" and t["visible"]}
    assert list(visible.values()) == ["passed", "failed"]  # the self-check had warned


def test_tolerance_accepts_other_honest_routes_to_the_oracle(ref, hidden):
    """Fair: a Cholesky route with a habitual 1e-6 jitter (as GPCurves.sample_curves adds) passes
    5.5's tolerance; the mistakes in test_selfcheck_mistakes are orders of magnitude off."""
    from metalearn_lite.grading.compare import compare
    from metalearn_lite.grading.harness import encode_value
    from metalearn_lite.tasks.gp import gp_posterior

    q = {q.qid: q for q in ASSIGNMENTS["in_context"]}["5.5"]
    for seed in (1, 2):
        for _, (cx, cy, tx, ty, mean, std, lengthscale, scale, noise) in hidden.hidden_cases("5.5", seed):
            post = gp_posterior(cx, cy, tx, lengthscale, scale, (noise ** 2 + 1e-6) ** 0.5)
            var = post.var - 1e-6
            oracle = -0.5 * (torch.log(2 * torch.pi * var) + (ty[..., 0] - post.mean) ** 2 / var)
            jittered = oracle.mean(-1) - gaussian_log_likelihood(ty, mean, std).sum(-1).mean(-1)
            expected = ref["oracle_gap"](cx, cy, tx, ty, mean, std, lengthscale, scale, noise)
            assert compare(encode_value(expected), encode_value(jittered), q.rtol, q.atol).passed
