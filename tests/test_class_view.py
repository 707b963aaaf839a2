"""The teacher's class view (chapter 06, issue 20): mastery per group, flags, suggestions, flag quality."""
from __future__ import annotations

import numpy as np
import pytest

from metalearn_lite.education.class_view import (
    ask_more_check, class_view, flag_quality, raw_score_flags, suggest_items,
)
from metalearn_lite.education.tutor import TutorModel

NUM_ITEMS = 40


def make_tutor(seed: int = 0) -> TutorModel:
    rng = np.random.default_rng(seed)
    return TutorModel(
        item_embedding=rng.normal(0, 0.8, (NUM_ITEMS, 3)), item_bias=rng.normal(0, 1.0, NUM_ITEMS),
        student_init=np.zeros(3), inner_lr=np.full(3, 0.15), num_inner_steps=5,
        item_names=tuple(f"i{j:02d}" for j in range(NUM_ITEMS)),
        groups=tuple(("fractions", "algebra", "geometry")[j % 3] for j in range(NUM_ITEMS)),
    )


def students_from_the_model(tutor: TutorModel, num_students: int, seed: int = 0) -> np.ndarray:
    """[S, I] 0/1 answers of students whose vectors come from the model's own prior N(w0, diag(alpha) * 8)."""
    rng = np.random.default_rng(seed)
    w = tutor.student_init + rng.normal(0, 1, (num_students, tutor.dim)) * np.sqrt(8 * tutor.inner_lr)
    p = 1 / (1 + np.exp(-(w @ tutor.item_embedding.T + tutor.item_bias)))
    return (rng.random(p.shape) < p).astype(float)


@pytest.fixture(scope="module")
def tutor() -> TutorModel:
    return make_tutor()


def test_batched_mastery_equals_the_single_student_answers(tutor):
    """The class view's numbers are the service's numbers (TutorModel.mastery, one student at a time)."""
    rng = np.random.default_rng(1)
    items = np.stack([rng.permutation(NUM_ITEMS)[:6] for _ in range(8)])
    answers = (rng.random(items.shape) < 0.5).astype(float)
    means, sds = tutor.mastery_batch(items, answers)
    for s in range(8):
        single = tutor.mastery(items[s], answers[s])
        for g, name in enumerate([*tutor.group_names, "all"]):
            assert means[s, g] == pytest.approx(single[name].mean, abs=1e-12)
            assert sds[s, g] == pytest.approx(single[name].sd, abs=1e-12)


def test_padding_is_ignored(tutor):
    items = np.array([[3, 7, 9, 0], [3, 7, 9, 11]])
    answers = np.array([[1, 0, 1, 1], [1, 0, 1, 0]], dtype=float)
    mask = np.array([[True, True, True, False], [True, True, True, True]])
    means, sds = tutor.mastery_batch(items, answers, mask)
    short_means, short_sds = tutor.mastery_batch(items[:1, :3], answers[:1, :3])
    np.testing.assert_allclose(means[0], short_means[0], atol=1e-12)
    np.testing.assert_allclose(sds[0], short_sds[0], atol=1e-12)
    view = class_view(tutor, items, answers, mask)
    assert view.num_answers.tolist() == [3, 4] and view.raw_score[0] == pytest.approx(2 / 3)


def test_class_view_sorts_flags_and_suggests(tutor):
    correct = students_from_the_model(tutor, 30, seed=2)
    rng = np.random.default_rng(3)
    items = np.stack([rng.permutation(NUM_ITEMS)[:5] for _ in range(30)])
    answers = np.take_along_axis(correct, items, 1)
    view = class_view(tutor, items, answers, low_fraction=0.2, z=1.0)
    assert view.mastery.shape == (30, 3) and view.group_names == ("fractions", "algebra", "geometry")
    assert np.all(np.diff(view.overall[view.order]) >= 0)
    assert view.low.sum() == int(np.sum(view.overall <= np.quantile(view.overall, 0.2))) >= 6
    np.testing.assert_array_equal(view.uncertain, np.abs(view.overall - view.cutoff) < view.overall_sd)
    assert 0 < view.uncertain.sum() < 30
    groups = dict(zip(tutor.item_names, tutor.groups))
    for g, names in view.suggestions.items():
        assert len(names) == 3 and all(groups[n] == g for n in names)
    text = view.summary()
    assert "intervene (" in text and view.student_ids[view.order[0]] in text


def test_suggestions_skip_answered_items(tutor):
    everything_but_one = np.array([[j for j in range(NUM_ITEMS) if j != 4]])
    answers = np.ones(everything_but_one.shape)
    got = suggest_items(tutor, everything_but_one, answers, per_group=1)
    assert got[tutor.groups[4]] == ["i04"]  # the only unanswered item wins its group


def test_raw_score_flags_include_ties():
    items = np.tile(np.arange(4), (5, 1))
    answers = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=float)
    assert raw_score_flags(items, answers, low_fraction=0.2).tolist() == [True, True, False, False, False]


def test_model_flags_find_the_weakest_better_than_chance_and_with_more_answers(tutor):
    correct = students_from_the_model(tutor, 400, seed=4)
    details: dict = {}
    few = flag_quality(tutor, correct, num_answers=3, class_size=20, num_classes=60, seed=0, details=details)
    many = flag_quality(tutor, correct, num_answers=20, class_size=20, num_classes=60, seed=0)
    chance = 0.2
    assert few["model"].precision[0] - few["model"].precision[1] > chance
    assert many["model"].precision[0] > few["model"].precision[0] + 0.1
    assert few["model"].flagged_per_class == pytest.approx(4.0)
    assert few["raw score"].recall[0] >= few["raw score, same count"].recall[0]  # ties flag more students
    gain = few["gain over raw score, same count"].precision
    assert gain[0] == pytest.approx(few["model"].precision[0] - few["raw score, same count"].precision[0], abs=0.02)
    # "ask more" marks the students the model misjudges (wrong side of the cutoff) more often
    check = ask_more_check(details)
    assert len(details["truth"]) == 60 and 0 < check["share flagged ask more"][0] < 1
    assert check["misjudged, ask more"][0] - check["misjudged, ask more"][1] > check["misjudged, the others"][0]


def test_bad_inputs_name_what_was_expected(tutor):
    with pytest.raises(ValueError, match=r"items and answers must both be \[num_students, K\]"):
        class_view(tutor, np.zeros((3, 2), dtype=int), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"low_fraction must be in \(0, 1\)"):
        class_view(tutor, np.zeros((3, 2), dtype=int), np.zeros((3, 2)), low_fraction=1.5)
    with pytest.raises(ValueError, match="student_ids must have 3 names"):
        class_view(tutor, np.zeros((3, 2), dtype=int), np.zeros((3, 2)), student_ids=["a"])


def test_widget_redraws_and_keeps_its_state(tutor):
    pytest.importorskip("ipywidgets")
    from metalearn_lite.widgets.class_view import ClassViewWidget, class_view_figure

    correct = students_from_the_model(tutor, 200, seed=5)
    w = ClassViewWidget(tutor, correct, class_size=12, num_answers=4, low_fraction=0.25)
    first = (w.plot.value, dict(w.last_state))
    assert first[0][:4] == b"\x89PNG" and first[1]["num_answers"] == 4 and first[1]["low"]
    w.answers_slider.value = 15
    assert w.last_state["num_answers"] == 15 and w.plot.value != first[0]
    w.new_class.click()
    assert w.last_state["seed"] == 1
    fig = class_view_figure(w.view)
    assert len(fig.axes) == 3  # heat map, flags, colour bar
