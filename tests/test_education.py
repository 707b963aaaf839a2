"""Tests for metalearn_lite.education (chapter 6: meta-learning for education)."""
from __future__ import annotations

import csv
import importlib.util
import itertools
import math
import os

import pytest
import torch

from metalearn_lite.education import irt
from metalearn_lite.education.assistments import AssistmentsColumnError, load_assistments
from metalearn_lite.education.learning_paths import (
    FixedCurriculum, MasteryBelief, MaxGainPolicy, RandomPolicy, TargetSuccessPolicy, compare_policies,
)
from metalearn_lite.education.metrics import binary_nll, mean_ci, rank_auc
from metalearn_lite.education.simulator import StudentSimulator
from metalearn_lite.education.swesat import SWESAT_INSTALL_HINT, SweSATUnavailable, load_swesat, score_responses

REQUIRE_IRTORCH = os.environ.get("METALEARN_REQUIRE_IRTORCH") == "1"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are small: one thread is faster and deterministic on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- simulator -----------------------------------------------------------------------------
def test_simulator_is_deterministic_per_seed():
    def run(seed):
        sim = StudentSimulator(num_items=20, num_skills=3, seed=seed)
        r, theta, m = sim.response_matrix(50)
        traj = sim.practice(lambda step, i, y: torch.full((10,), step % 20), 10, 15)
        return sim.items.b, r, traj.responses, traj.mastery

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[1], c[1])


def test_practice_increases_mastery_and_mastery_increases_success():
    sim = StudentSimulator(num_items=30, num_skills=3, seed=0, forget=0.0)
    traj = sim.practice(lambda step, i, y: torch.full((200,), step % 30), 200, 60)
    mastery = traj.mean_mastery().mean(0)
    assert mastery[-1] > mastery[0] + 0.3
    # without forgetting, mastery never decreases for any student
    assert (traj.mastery[:, 1:] >= traj.mastery[:, :-1]).all()
    theta, m = sim.sample_students(100)
    assert (sim.success_proba(theta, torch.ones_like(m)) > sim.success_proba(theta, torch.zeros_like(m))).all()
    # no learning at all when both learn probabilities are 0
    frozen = StudentSimulator(num_items=30, num_skills=3, seed=0, forget=0.0, learn_correct=0.0, learn_wrong=0.0)
    t2 = frozen.practice(lambda step, i, y: torch.full((50,), step % 30), 50, 20)
    assert torch.equal(t2.mastery[:, 0], t2.mastery[:, -1])


def test_simulator_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="learn_correct"):
        StudentSimulator(learn_correct=1.5)


# --- 2PL ---------------------------------------------------------------------------------
def _corr(x, y):
    x = x - x.mean()
    y = y - y.mean()
    return (x @ y / (x.norm() * y.norm())).item()


def test_2pl_recovers_simulated_item_parameters():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    num_students, num_items = 800, 60
    a = torch.exp(0.3 * torch.randn(num_items, generator=g))
    b = torch.randn(num_items, generator=g)
    theta = torch.randn(num_students, generator=g)
    y = (torch.rand(num_students, num_items, generator=g) < torch.sigmoid(a * (theta[:, None] - b))).float()
    y[torch.rand(y.shape, generator=g) < 0.05] = float("nan")  # missing answers are skipped
    fit = irt.fit_2pl(y, num_steps=200, lr=0.05)
    assert _corr(fit.b, b) > 0.9
    assert _corr(fit.a, a) > 0.9
    assert _corr(fit.theta, theta) > 0.9
    assert abs(fit.prior_sd - 1.0) < 1e-4  # abilities standardised by construction


def test_2pl_recovers_single_skill_simulator_items():
    sim = StudentSimulator(num_items=40, num_skills=1, seed=1, mastery_gain=0.0, initial_mastery=0.0)
    y, theta, _ = sim.response_matrix(800)
    fit = irt.fit_2pl(y, num_steps=200)
    assert _corr(fit.b, sim.items.b) > 0.9
    assert _corr(fit.a, sim.items.a) > 0.9


def test_grid_posterior_equals_brute_force_bayes():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(6, generator=g) + 0.5
    b = torch.randn(6, generator=g)
    grid = irt.ability_grid(0.1, 0.3, num_points=41)
    prior = irt.normal_prior(grid, 0.1, 0.3)
    items = torch.tensor([[0, 3, 5], [2, 2, 1]])
    answers = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    post = irt.ability_posterior(a, b, items, answers, grid, prior)
    for s in range(2):
        weights = []
        for gi, th in enumerate(grid.tolist()):
            w = prior[gi].item()
            for i, y in zip(items[s].tolist(), answers[s].tolist()):
                p = 1.0 / (1.0 + math.exp(-a[i].item() * (th - b[i].item())))
                w *= p if y == 1.0 else 1.0 - p
            weights.append(w)
        brute = torch.tensor(weights, dtype=torch.float64)
        brute = brute / brute.sum()
        assert torch.allclose(post[s], brute, atol=1e-10)
    # K = 0: the posterior is the prior
    empty = irt.ability_posterior(a, b, torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0), grid, prior)
    assert torch.allclose(empty[0], prior)
    # the predictive probability is the posterior average of the item curve
    pred = irt.predict_proba(a, b, post, grid)
    manual = (post[0] * torch.sigmoid(a[4].double() * (grid - b[4].double()))).sum()
    assert abs(pred[0, 4].item() - manual.item()) < 1e-6


def test_fisher_information_matches_numerical_second_derivative():
    a = torch.tensor([0.7, 1.3, 2.0], dtype=torch.float64)
    b = torch.tensor([-0.5, 0.2, 1.0], dtype=torch.float64)
    theta = torch.tensor([0.3], dtype=torch.float64)
    info = irt.fisher_information(a, b, theta)[0]
    eps = 1e-4
    for i in range(3):
        # Fisher information = E_y[-d^2/dtheta^2 log P(y | theta)]
        def loglik(t, y):
            p = torch.sigmoid(a[i] * (t - b[i]))
            return y * torch.log(p) + (1 - y) * torch.log(1 - p)

        p = torch.sigmoid(a[i] * (theta - b[i]))
        expected = 0.0
        for y, w in ((1.0, p), (0.0, 1 - p)):
            d2 = (loglik(theta + eps, y) - 2 * loglik(theta, y) + loglik(theta - eps, y)) / eps**2
            expected = expected + w * (-d2)
        assert abs(info[i].item() - expected.item()) < 1e-5


def test_adaptive_selection_picks_max_information_available_item():
    a = torch.tensor([1.0, 2.0, 1.5, 0.5])
    b = torch.tensor([0.0, 0.0, 2.0, 0.1])
    theta = torch.tensor([0.0, 2.0, 0.0])
    available = torch.tensor([[True, True, True, True], [True, True, True, True], [True, False, True, True]])
    chosen = irt.select_max_information(a, b, theta, available)
    info = irt.fisher_information(a, b, theta)
    for s in range(3):
        best = max((i for i in range(4) if available[s, i]), key=lambda i: info[s, i].item())
        assert chosen[s].item() == best
    assert chosen.tolist() == [1, 2, 0]
    none = irt.select_max_information(a, b, theta[:1], torch.zeros(1, 4, dtype=torch.bool))
    assert none.item() == -1


def test_cat_never_repeats_or_picks_missing_items():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(12, generator=g) + 0.5
    b = torch.randn(12, generator=g)
    answers = (torch.rand(5, 12, generator=g) < 0.5).float()
    answers[0, 3] = float("nan")
    grid = irt.ability_grid()
    chosen = irt.adaptive_items(a, b, answers, 8, grid, irt.normal_prior(grid, 0.0, 1.0))
    assert chosen.shape == (5, 8)
    for row in chosen.tolist():
        assert len(set(row)) == 8
    assert 3 not in chosen[0].tolist()
    # the first item is the most informative at the prior mean for everyone
    first = irt.fisher_information(a, b, torch.tensor(0.0)).argmax().item()
    assert (chosen[:, 0] == first).all()


# --- metrics -----------------------------------------------------------------------------
def test_rank_auc_matches_brute_force_pair_count():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        scores = torch.randint(0, 6, (40,), generator=g).float()  # many ties
        labels = (torch.rand(40, generator=g) < 0.4).float()
        pos = scores[labels == 1].tolist()
        neg = scores[labels == 0].tolist()
        wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
        assert abs(rank_auc(scores, labels) - wins / (len(pos) * len(neg))) < 1e-12
    assert rank_auc(torch.tensor([0.1, 0.9]), torch.tensor([0.0, 1.0])) == 1.0
    assert math.isnan(rank_auc(torch.tensor([0.1, 0.9]), torch.tensor([1.0, 1.0])))


def test_nll_and_ci():
    assert abs(binary_nll(torch.tensor([0.5, 0.5]), torch.tensor([0.0, 1.0])) - math.log(2)) < 1e-9
    mean, half = mean_ci([1.0, 2.0, 3.0, float("nan")])
    assert mean == 2.0 and abs(half - 1.96 * 1.0 / math.sqrt(3)) < 1e-12


# --- learning paths ----------------------------------------------------------------------
def test_belief_tracks_true_mastery():
    sim = StudentSimulator(num_items=30, num_skills=3, seed=2)
    policy = RandomPolicy(sim, seed=1)
    policy.reset(300)
    belief = MasteryBelief(sim, 300)
    traj = sim.practice(lambda step, i, y: policy.choose(step), 300, 30, observe=belief.update)
    truth = traj.mastery[:, -1]
    # the belief ranks mastered above unmastered skills far better than chance
    assert rank_auc(belief.p.reshape(-1), truth.reshape(-1)) > 0.75


def test_adaptive_learning_path_beats_random():
    def policies(sim):
        return {"random": RandomPolicy(sim, seed=0), "gain": MaxGainPolicy(sim), "fixed": FixedCurriculum(sim),
                "target": TargetSuccessPolicy(sim, 0.7)}

    res = compare_policies(policies, num_classes=4, class_size=20, num_steps=20, seed=0)
    assert res["gain"]["mean"] - res["gain"]["ci"] > res["random"]["mean"] + res["random"]["ci"]
    assert res["gain"]["per_class"].shape == (4,)
    assert res["gain"]["curve"].shape == (21,)


# --- ASSISTments -------------------------------------------------------------------------
def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_assistments_loader_orders_attempts_and_builds_matrix(tmp_path):
    path = tmp_path / "skill_builder.csv"
    _write_csv(path, ["order_id", "assignment_id", "user_id", "problem_id", "correct", "skill_id", "skill_name"], [
        [30, 1, "u1", "p2", 0, "s1", "Addition"],
        [10, 1, "u1", "p1", 1, "s1", "Addition"],
        [20, 1, "u1", "p2", 1, "s1", "Addition"],  # a second attempt: the matrix keeps the first (order 20 < 30)
        [15, 1, "u2", "p3", 0, "s2", "Fractions"],
        [16, 1, "u2", "p1", "", "s1", "Addition"],  # empty correctness: skipped
    ])
    logs = load_assistments(path)
    assert logs.students == ("u1", "u2")
    assert logs.problems == ("p2", "p1", "p3")
    u1 = logs.sequences[0]
    assert u1["problem"].tolist() == [1, 0, 0]  # p1, p2, p2 in order_id order
    assert u1["correct"].tolist() == [1.0, 1.0, 0.0]
    assert u1["skill"].tolist() == [0, 0, 0]
    m = logs.response_matrix()
    assert m.shape == (2, 3)
    assert m[0, 0].item() == 1.0 and m[0, 1].item() == 1.0 and math.isnan(m[0, 2].item())
    assert m[1, 2].item() == 0.0 and math.isnan(m[1, 1].item())


def test_assistments_loader_accepts_variants(tmp_path):
    path = tmp_path / "variant.csv"
    _write_csv(path, ["Student_ID", "Item_ID", "is_correct", "KC(Default)"], [["a", "x", 1, "k"], ["a", "y", 0, "k"]])
    logs = load_assistments(path)
    assert logs.sequences[0]["correct"].tolist() == [1.0, 0.0]  # file order without an order column
    assert logs.skills == ("k",)


def test_assistments_missing_column_error_lists_expected_and_found(tmp_path):
    path = tmp_path / "bad.csv"
    _write_csv(path, ["user_id", "problem", "answer"], [["u", "p", 1]])
    with pytest.raises(AssistmentsColumnError) as err:
        load_assistments(path)
    msg = str(err.value)
    assert "correct" in msg and "is_correct" in msg and "answer" in msg and "user_id" in msg


def test_assistments_rejects_non_binary_correct(tmp_path):
    path = tmp_path / "bad2.csv"
    _write_csv(path, ["user_id", "problem_id", "correct"], [["u", "p", "0.5"]])
    with pytest.raises(ValueError, match="must be 0 or 1"):
        load_assistments(path)


# --- SweSAT ------------------------------------------------------------------------------
def test_score_responses_marks_missing_as_nan():
    choices = torch.tensor([[0.0, 2.0, float("nan")], [1.0, 2.0, 3.0]])
    keys = torch.tensor([0, 1, 3])
    s = score_responses(choices, keys)
    assert s[0, :2].tolist() == [1.0, 0.0] and math.isnan(s[0, 2].item())
    assert s[1].tolist() == [0.0, 0.0, 1.0]


def test_swesat_missing_gives_install_hint(monkeypatch):
    import metalearn_lite.education.swesat as swesat

    monkeypatch.setattr(swesat.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SweSATUnavailable, match="pip install --no-deps irtorch==0.5.6"):
        swesat.load_swesat()


def test_swesat_real_files_load():
    """Strict in CI (METALEARN_REQUIRE_IRTORCH=1): the real SweSAT files must load."""
    if importlib.util.find_spec("irtorch") is None and not REQUIRE_IRTORCH:
        pytest.skip(f"irtorch not installed ({SWESAT_INSTALL_HINT})")
    data = load_swesat()
    assert data.correct.shape == (5000, 160)
    assert data.keys.shape == (160,) and int(data.keys.min()) >= 0 and int(data.keys.max()) <= 4
    observed = ~torch.isnan(data.correct)
    assert observed.float().mean() > 0.95
    assert set(data.correct[observed].unique().tolist()) == {0.0, 1.0}
    # scored against the keys, items are far above chance (0.2) on average
    assert 0.4 < torch.nanmean(data.correct).item() < 0.8
    assert data.parts[:80] == ("quant",) * 80 and data.parts[80:] == ("verbal",) * 80
    assert load_swesat("verbal").correct.shape == (5000, 80)


# --- personalisation ---------------------------------------------------------------------
from metalearn_lite.education.personalise import (  # noqa: E402
    MAMLStudent, PopulationBaseline, SetEncoderStudent, TwoPLPredictor, adaptive_support, evaluate,
    random_support, sample_training_batch, split_students,
)


def _sim_data(num_students=600, num_items=30, seed=0):
    sim = StudentSimulator(num_items=num_items, num_skills=1, seed=seed, mastery_gain=0.0, initial_mastery=0.0)
    y, _, _ = sim.response_matrix(num_students)
    return y


def test_support_sets_are_observed_disjoint_and_nested():
    y = _sim_data(50, 20)
    y[0, :5] = float("nan")
    s5, s10 = random_support(y, 5, seed=1), random_support(y, 10, seed=1)
    assert torch.equal(s10[:, :5], s5)
    assert not torch.isnan(y.gather(1, s10)).any()
    sx, sy, qx, qy = sample_training_batch(y, 8, 4, 6, torch.Generator().manual_seed(0))
    for a, b in zip(sx.tolist(), qx.tolist()):
        assert not set(a) & set(b)
    with pytest.raises(ValueError, match="fewer than"):
        random_support(y, 19)


def test_evaluate_matches_direct_computation():
    y = _sim_data(40, 12)
    support = random_support(y, 3, seed=0)
    probs = torch.rand(y.shape, generator=torch.Generator().manual_seed(0))
    scores = evaluate(lambda items, answers: probs, y, support, num_bootstrap=20)
    query = torch.ones(y.shape, dtype=torch.bool).scatter(1, support, False)
    assert abs(scores.auc[0] - rank_auc(probs[query], y[query])) < 1e-9
    acc = [((probs[s][query[s]] > 0.5).float() == y[s][query[s]]).float().mean().item() for s in range(40)]
    assert abs(scores.accuracy[0] - sum(acc) / 40) < 1e-6
    assert scores.auc[1] > 0


def test_2pl_personalisation_improves_with_answers_and_cat_beats_random():
    train, test = split_students(_sim_data(900, 30), test_fraction=0.3)
    fit = irt.fit_2pl(train, num_steps=200)
    twopl = TwoPLPredictor(fit)
    k0 = evaluate(twopl.predict, test, random_support(test, 0), num_bootstrap=0)
    k10 = evaluate(twopl.predict, test, random_support(test, 10), num_bootstrap=0)
    cat10 = evaluate(twopl.predict, test, adaptive_support(test, 10, fit), num_bootstrap=0)
    pop10 = evaluate(PopulationBaseline(train).predict, test, random_support(test, 10), num_bootstrap=0)
    assert k10.auc[0] > k0.auc[0] + 0.03
    assert k10.nll[0] < pop10.nll[0]
    assert cat10.nll[0] < k10.nll[0]


def test_maml_student_adapts_only_the_student_vector_and_learns():
    train, test = split_students(_sim_data(600, 30), test_fraction=0.3)
    maml = MAMLStudent(30, dim=2, num_inner_steps=3, seed=0)
    embedding_before = maml.model.item_embedding.detach().clone()
    items = random_support(test, 0)
    w = maml.adapted_students(items, test.gather(1, items))
    assert torch.equal(w, maml.model.student.detach().expand(test.shape[0], -1))  # K = 0: no adaptation
    history = maml.fit(train, num_steps=150, batch_size=32, max_shots=10, num_queries=10, outer_lr=0.05, progress=False)
    assert not torch.equal(embedding_before, maml.model.item_embedding.detach())
    assert sum(history[-10:]) < sum(history[:10])
    sup = random_support(test, 10)
    w10 = maml.adapted_students(sup, test.gather(1, sup))
    # students with more correct answers get a different (adapted) vector
    assert w10.std(0).sum() > 0
    pop = evaluate(PopulationBaseline(train).predict, test, sup, num_bootstrap=0)
    maml_scores = evaluate(maml.predict, test, sup, num_bootstrap=0)
    print("maml vs population AUC", maml_scores.auc[0], pop.auc[0])
    assert maml_scores.auc[0] > pop.auc[0] + 0.02


def test_set_encoder_ignores_masked_pairs_and_is_permutation_invariant():
    enc = SetEncoderStudent(10, dim=2, item_dim=4, hidden=8)
    items = torch.tensor([[1, 2, 3]])
    answers = torch.tensor([[1.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, False]])
    a = enc(items, answers, mask)
    b = enc(torch.tensor([[1, 2, 7]]), torch.tensor([[1.0, 0.0, 0.0]]), mask)
    assert torch.allclose(a, b)
    c = enc(items[:, [2, 0, 1]], answers[:, [2, 0, 1]])
    assert torch.allclose(enc(items, answers), c, atol=1e-6)


# --- widget ------------------------------------------------------------------------------
def test_adaptive_practice_widget_buttons_update_state_and_picture():
    from matplotlib.figure import Figure

    from metalearn_lite.widgets.education import AdaptivePracticeWidget, AdaptiveTester, show

    a = torch.tensor([1.0, 2.0, 1.5, 0.7, 1.2])
    b = torch.tensor([0.0, 0.5, -1.0, 1.0, -0.3])
    tester = AdaptiveTester(a, b, parts=["q", "q", "v", "v", "v"])
    w = AdaptivePracticeWidget(tester)
    first = w.last_state["next_item"]
    assert first == int(irt.fisher_information(a, b, torch.tensor(0.0)).argmax())
    png0 = w.plot.value
    w.buttons["correct"].click()
    up = w.last_state["ability"]
    assert up > 0.2 and w.last_state["answers"] == [1.0] and w.plot.value != png0
    assert w.last_state["mastery"]["all items"] > 0.5
    w.buttons["wrong"].click()
    assert w.last_state["ability"] < up
    assert w.last_state["next_item"] not in tester.items
    for _ in range(3):
        w.buttons["wrong"].click()
    assert w.last_state["next_item"] == -1 and w.buttons["correct"].disabled
    w.buttons["reset"].click()
    assert w.last_state["answers"] == [] and w.last_state["next_item"] == first
    assert "image/png" in w._repr_mimebundle_()
    assert isinstance(show(tester), Figure)  # no IPython shell here: the static figure
