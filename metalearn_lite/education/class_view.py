"""A teacher's view of a class (chapter 06): predicted mastery per student and item group, flags.

From each student's few answers, the meta-learned student model (``tutor.TutorModel``) predicts
mastery per item group (mean P(correct) over the group's items) with an approximate SD. The
view then

- sorts the class by predicted overall mastery (a heat map: students x groups);
- flags **low** students (*intervene*): predicted overall mastery among the lowest
  ``low_fraction`` of the class, i.e. at or below the class ``cutoff`` (its ``low_fraction``
  quantile);
- flags **uncertain** students (*ask more*): the interval mean +/- z * SD contains the cutoff,
  so the answers so far cannot tell on which side of it the student is;
- suggests next items per group: for each group, the items with the largest mean expected
  information (p (1 - p) E_i^T Sigma_s E_i) over the chosen students who have not answered them.

``flag_quality`` measures what matters to a teacher: are the flagged students the truly
weakest, judged on answers the model never saw (the rest of the test)? It compares the model's
low flags with flagging by raw score (fraction correct of the same few answers: everyone at or
below the same quantile, or exactly as many students as the model flags), as precision and
recall over many classes with 95% CIs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .metrics import mean_ci
from .tutor import TutorModel

__all__ = ["ClassView", "class_view", "suggest_items", "raw_score_flags", "flag_quality", "FlagQuality",
           "ask_more_check"]


@dataclass(frozen=True)
class ClassView:
    """A class seen through the student model (S students, G item groups).

    Attributes:
        student_ids: S names.
        group_names: G group names (the model's ``group_names``).
        mastery, sd: [S, G] predicted mastery per group and its SD.
        overall, overall_sd: [S] predicted mastery over all items and its SD.
        num_answers: [S] answers each student gave.
        raw_score: [S] fraction correct of those answers (NaN with none).
        cutoff: the class's ``low_fraction`` quantile of ``overall``.
        low: [S] bool, overall <= cutoff (intervene).
        uncertain: [S] bool, |overall - cutoff| < z * overall_sd (ask more).
        order: [S] student indices sorted by overall mastery, lowest first.
        suggestions: {group: [item names]} next items per group (see ``suggest_items``).
    """

    student_ids: tuple[str, ...]
    group_names: tuple[str, ...]
    mastery: np.ndarray
    sd: np.ndarray
    overall: np.ndarray
    overall_sd: np.ndarray
    num_answers: np.ndarray
    raw_score: np.ndarray
    cutoff: float
    low: np.ndarray
    uncertain: np.ndarray
    order: np.ndarray
    suggestions: dict[str, list[str]]

    def summary(self) -> str:
        """One line per flag: who to help, who to ask more."""
        low = [self.student_ids[i] for i in self.order if self.low[i]]
        ask = [self.student_ids[i] for i in self.order if self.uncertain[i]]
        return (f"{len(self.student_ids)} students; cutoff (predicted mastery) {self.cutoff:.2f}\n"
                f"intervene ({len(low)}): {', '.join(low) or '-'}\n"
                f"ask more ({len(ask)}): {', '.join(ask) or '-'}")


def _padded(items: np.ndarray, answers: np.ndarray, mask: np.ndarray | None):
    items = np.asarray(items, dtype=np.int64)
    answers = np.asarray(answers, dtype=np.float64)
    if items.ndim != 2 or answers.shape != items.shape:
        raise ValueError(f"items and answers must both be [num_students, K], got {list(items.shape)} "
                         f"and {list(answers.shape)}")
    m = np.ones(items.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != items.shape:
        raise ValueError(f"mask must be [num_students, K] = {list(items.shape)}, got {list(m.shape)}")
    answers = np.where(m, np.nan_to_num(answers), 0.0)
    return items, answers, m


def suggest_items(tutor: TutorModel, items: np.ndarray, answers: np.ndarray, mask: np.ndarray | None = None,
                  students: Sequence[int] | None = None, per_group: int = 3) -> dict[str, list[str]]:
    """Next items per group for a set of students (default: all).

    Score of item i: mean over the chosen students of p_si (1 - p_si) E_i^T Sigma_s E_i, the
    expected information about each student's vector, counting 0 for a student who already
    answered i. Returns the ``per_group`` best item names of each group.
    """
    items, answers, m = _padded(items, answers, mask)
    rows = np.arange(items.shape[0]) if students is None else np.asarray(students, dtype=np.int64)
    if rows.size == 0:
        return {g: [] for g in tutor.group_names}
    p, sigma = tutor.posterior_batch(items[rows], answers[rows], m[rows])
    e = tutor.item_embedding
    info = p * (1 - p) * np.einsum("id,sde,ie->si", e, sigma, e)
    answered = np.zeros(info.shape, dtype=bool)
    r, k = np.nonzero(m[rows])
    answered[r, items[rows][r, k]] = True
    info = np.where(answered, 0.0, info).mean(0)
    out = {}
    groups = np.asarray(tutor.groups)
    for g in tutor.group_names:
        idx = np.flatnonzero(groups == g)
        best = idx[np.argsort(-info[idx], kind="stable")[:per_group]]
        out[g] = [tutor.item_names[i] for i in best]
    return out


def class_view(tutor: TutorModel, items: np.ndarray, answers: np.ndarray, mask: np.ndarray | None = None, *,
               student_ids: Sequence[str] | None = None, low_fraction: float = 0.2, z: float = 1.0,
               per_group: int = 3) -> ClassView:
    """The class view from each student's answers.

    Args:
        tutor: the student model.
        items: [S, K] item indices each student answered (pad with any index where ``mask`` is False).
        answers: [S, K] 0/1.
        mask: [S, K] bool, False for padding (students with fewer answers); None = all answered.
        student_ids: S names (default "s01", "s02", ...).
        low_fraction: the share of the class flagged low (the cutoff quantile).
        z: half-width of the "ask more" interval in SDs.
        per_group: items suggested per group (for the uncertain and low students; all if none).
    """
    if not 0 < low_fraction < 1:
        raise ValueError(f"low_fraction must be in (0, 1), got {low_fraction}")
    items, answers, m = _padded(items, answers, mask)
    num_students = items.shape[0]
    ids = tuple(student_ids) if student_ids is not None else tuple(f"s{i + 1:02d}" for i in range(num_students))
    if len(ids) != num_students:
        raise ValueError(f"student_ids must have {num_students} names, got {len(ids)}")
    means, sds = tutor.mastery_batch(items, answers, m)  # [S, G+1], the last column is all items
    overall, overall_sd = means[:, -1], sds[:, -1]
    cutoff = float(np.quantile(overall, low_fraction))
    low = overall <= cutoff
    uncertain = np.abs(overall - cutoff) < z * overall_sd
    counts = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where(counts > 0, (answers * m).sum(1) / np.maximum(counts, 1), np.nan)
    focus = np.flatnonzero(low | uncertain)
    suggestions = suggest_items(tutor, items, answers, m, students=focus if focus.size else None, per_group=per_group)
    return ClassView(
        student_ids=ids, group_names=tutor.group_names, mastery=means[:, :-1], sd=sds[:, :-1], overall=overall,
        overall_sd=overall_sd, num_answers=counts, raw_score=raw, cutoff=cutoff, low=low, uncertain=uncertain,
        order=np.argsort(overall, kind="stable"), suggestions=suggestions,
    )


def raw_score_flags(items: np.ndarray, answers: np.ndarray, mask: np.ndarray | None = None,
                    low_fraction: float = 0.2) -> np.ndarray:
    """[S] bool: students whose fraction correct is at or below the class's ``low_fraction`` quantile.

    What a teacher does without a model ("everyone with at most 1 of 5 right"); ties at the
    cutoff are all flagged, so the count can exceed ``low_fraction * S``.
    """
    items, answers, m = _padded(items, answers, mask)
    raw = (answers * m).sum(1) / np.maximum(m.sum(1), 1)
    return raw <= np.quantile(raw, low_fraction)


@dataclass(frozen=True)
class FlagQuality:
    """Precision and recall of low flags against the truly weakest, (mean, 95% CI half-width) over classes."""

    precision: tuple[float, float]
    recall: tuple[float, float]
    flagged_per_class: float
    num_classes: int


def _quality(flags: list[np.ndarray], truth: list[np.ndarray]) -> FlagQuality:
    precision, recall = [], []
    for f, t in zip(flags, truth):
        hit = (f & t).sum()
        precision.append(hit / f.sum() if f.sum() else np.nan)
        recall.append(hit / t.sum() if t.sum() else np.nan)
    return FlagQuality(mean_ci(precision), mean_ci(recall), float(np.mean([f.sum() for f in flags])), len(flags))


def flag_quality(tutor: TutorModel, correct: np.ndarray, *, num_answers: int = 5, class_size: int = 25,
                 num_classes: int = 40, low_fraction: float = 0.2, seed: int = 0,
                 details: dict | None = None) -> dict[str, FlagQuality]:
    """Are the flagged students the truly weakest? Model flags vs raw-score flags on held-out answers.

    Each simulated class: ``class_size`` students drawn from ``correct`` [N, I] (0/1, NaN missing;
    students the model was not trained on), each with ``num_answers`` random observed items as
    the "few answers". Truth: the ``low_fraction`` of the class with the lowest fraction correct
    on all their *other* observed items (ties at the cutoff included).

    Returns {"model": ..., "raw score": ..., "raw score, same count": ...} FlagQuality: the last
    flags as many students as the model (lowest raw score first, ties broken at random), so its
    precision and recall compare with the model's at equal effort. "gain over raw score, same
    count": the paired per-class difference in precision (model minus that), with its CI.
    ``details``, if given, receives per-class lists "truth", "low" and "uncertain" ([S] bool
    each) for further checks (``ask_more_check``).
    """
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    observed = ~np.isnan(correct)
    eligible = np.flatnonzero(observed.sum(1) > num_answers + 5)
    flags: dict[str, list[np.ndarray]] = {"model": [], "raw score": [], "raw score, same count": []}
    truth = []
    for _ in range(num_classes):
        rows = rng.choice(eligible, size=class_size, replace=False)
        scores = np.where(observed[rows], rng.random((class_size, correct.shape[1])), 2.0)
        support = np.argsort(scores, 1)[:, :num_answers]
        answers = np.take_along_axis(correct[rows], support, 1)
        held = observed[rows].copy()
        np.put_along_axis(held, support, False, 1)
        held_score = np.nansum(np.where(held, correct[rows], 0.0), 1) / held.sum(1)
        truth.append(held_score <= np.quantile(held_score, low_fraction))
        view = class_view(tutor, support, answers, low_fraction=low_fraction)
        flags["model"].append(view.low)
        flags["raw score"].append(raw_score_flags(support, answers, low_fraction=low_fraction))
        # as many flags as the model raises, lowest raw score first, ties broken at random
        raw = answers.mean(1) + 1e-6 * rng.random(class_size)
        same = np.zeros(class_size, dtype=bool)
        same[np.argsort(raw)[:view.low.sum()]] = True
        flags["raw score, same count"].append(same)
        if details is not None:
            for key, value in (("truth", truth[-1]), ("low", view.low), ("uncertain", view.uncertain)):
                details.setdefault(key, []).append(value)
    out = {name: _quality(f, truth) for name, f in flags.items()}
    # paired over classes: the model's precision minus the same-count raw score's (equal counts,
    # so precision and recall differences are equal up to classes with no truly weak student)
    gains = []
    for f_model, f_raw, t in zip(flags["model"], flags["raw score, same count"], truth):
        gains.append(((f_model & t).sum() - (f_raw & t).sum()) / max(f_model.sum(), 1))
    out["gain over raw score, same count"] = FlagQuality(mean_ci(gains), mean_ci(gains), 0.0, len(gains))
    return out


def ask_more_check(details: dict) -> dict[str, tuple[float, float]]:
    """Do the "ask more" flags mark the students the model is likely to misjudge?

    From ``flag_quality(..., details=d)``: the share of students on the wrong side of the cutoff
    (flagged low but not truly weakest, or the reverse), among the uncertain and among the other
    students, as (mean, 95% CI) over classes; and the share flagged uncertain.
    """
    wrong_uncertain, wrong_certain, share = [], [], []
    for truth, low, uncertain in zip(details["truth"], details["low"], details["uncertain"]):
        wrong = low != truth
        wrong_uncertain.append(wrong[uncertain].mean() if uncertain.any() else np.nan)
        wrong_certain.append(wrong[~uncertain].mean() if (~uncertain).any() else np.nan)
        share.append(uncertain.mean())
    return {"misjudged, ask more": mean_ci(wrong_uncertain), "misjudged, the others": mean_ci(wrong_certain),
            "share flagged ask more": mean_ci(share)}
