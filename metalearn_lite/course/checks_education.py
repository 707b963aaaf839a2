"""Self-checks for chapter 06's exercises (meta-learning for education).

Each ``check_*`` computes the reference with the package's own functions (or reads it from
the results the chapter computed in the student's kernel) and reports with
:mod:`metalearn_lite.course.checks`: ``✓`` on a right answer, "not answered yet" for a
placeholder, ``CheckFailed`` (what was expected, what came, a hint) on a wrong one.

- ``check_fisher_information(answer, fit)``: the information ``a^2 p (1 - p)`` of item 0
  at ``theta = 0.5`` under the fitted 2PL ``fit`` (reference: ``irt.fisher_information``).
- ``check_adaptive_gain(answer, results)``: the 2PL's AUC with 5 adaptive items minus its
  AUC with 5 random ones, read from section 5's ``results``.
- ``check_population_puzzle(answer)``: why the population baseline, which ignores the
  answers, scores a higher AUC with adaptive support sets (a multiple choice).
- ``check_success_target(answer)``: which success target, 0.5 or 0.9, teaches more in 40
  exercises (reference: ``compare_policies`` with ``TargetSuccessPolicy``, 10 classes of 20).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..education import irt
from ..education.learning_paths import TargetSuccessPolicy, compare_policies
from .checks import CheckFailed, expect_close, failure_message, is_unanswered, not_answered, report

__all__ = ["check_fisher_information", "check_adaptive_gain", "check_population_puzzle",
           "check_success_target", "success_target_results"]

TWO_PL = "2PL + grid posterior"


def check_fisher_information(answer, fit) -> bool:
    """``answer``: a float, item 0's Fisher information at ``theta = 0.5`` under ``fit``
    (an ``irt.TwoPL`` with ``a``, ``b`` of shape ``[num_items]``)."""
    name = "exercise 1 (Fisher information)"
    if is_unanswered(answer):
        return not_answered(name)
    expected = irt.fisher_information(fit.a.double(), fit.b.double(), torch.tensor(0.5, dtype=torch.float64))[0]
    return expect_close(name, answer, expected.item(), atol=1e-4,
                        hint=("the Fisher information of a 2PL item at ability theta is a^2 p (1 - p), with p the "
                              "probability of a correct answer at theta (here theta = 0.5, item 0)",
                              "p = sigmoid(a (theta - b)) with item 0's fitted a and b (fit.a[0], fit.b[0]); "
                              "return a float",
                              "p = torch.sigmoid(fit.a[0] * (0.5 - fit.b[0])); the information is a^2 * p * (1 - p) "
                              "with a = fit.a[0] (a float: .item())"),
                        note="largest where p = 0.5 (theta = b), and growing with a^2")


def check_adaptive_gain(answer, results: dict) -> bool:
    """``answer``: AUC(2PL, 5 adaptive items) - AUC(2PL, 5 random items), a float read from
    ``results[(mode, k, method)].auc = (mean, ci95)`` (section 5); the printed table's three
    decimals are precise enough."""
    name = "exercise 2a (what 5 adaptive items add)"
    if is_unanswered(answer):
        return not_answered(name)
    adaptive, random_ = results["adaptive", 5, TWO_PL].auc, results["random", 5, TWO_PL].auc
    gain = adaptive[0] - random_[0]
    beyond = "beyond" if abs(gain) > adaptive[1] + random_[1] else "within"
    population = results["adaptive", 5, "population"].auc[0] - results["random", 5, "population"].auc[0]
    return expect_close(name, answer, gain, atol=1.5e-3,
                        hint="in the AUC table take the '2PL + grid posterior' rows, column K=5: the 'adaptive' "
                             "AUC minus the 'random' AUC (a positive number: adaptive items help)",
                        note=f"{gain:+.3f}, against CIs of ±{adaptive[1]:.3f} and ±{random_[1]:.3f}: {beyond} "
                             f"the noise. Part of it is not the model: the population baseline, which ignores the "
                             f"answers, moves by {population:+.3f} too (exercise 2b says why)")


POPULATION_CHOICES = {
    "a": "the population baseline learns from the adaptive answers",
    "b": "the support items leave the query set: the two rows score different items",
    "c": "bootstrap noise",
}


def check_population_puzzle(answer) -> bool:
    """``answer``: ``"a"``, ``"b"`` or ``"c"`` (see ``POPULATION_CHOICES``)."""
    name = "exercise 2b (the population baseline's puzzle)"
    if is_unanswered(answer):
        return not_answered(name)
    if answer not in POPULATION_CHOICES:
        raise CheckFailed(failure_message(name, f"expected one of the letters {sorted(POPULATION_CHOICES)}, "
                                                f"got {answer!r}"))
    return report(name, answer == "b",
                  hint="PopulationBaseline.predict returns the same probabilities whatever the support answers "
                       "are, so it cannot learn from them; and the gap is many CI widths wide, so it is not noise. "
                       "What else changes between a 'random' and an 'adaptive' row of the same K?",
                  note="the query is every item *not* in the support: CAT takes away the items whose outcome is "
                       "most uncertain for that student, and what remains is easier to rank. Compare two rows' "
                       "AUCs on the same query items, or against the baseline on the same rows")


@lru_cache(maxsize=4)
def success_target_results(num_classes: int = 10, class_size: int = 20, num_steps: int = 40, seed: int = 0) -> dict:
    """``{0.5: {"mean", "ci", ...}, 0.9: {...}}``: mastery after ``num_steps`` exercises with
    ``TargetSuccessPolicy(sim, target)`` (``compare_policies``; 95% CI over classes)."""
    return compare_policies(lambda sim: {t: TargetSuccessPolicy(sim, t) for t in (0.5, 0.9)},
                            num_classes=num_classes, class_size=class_size, num_steps=num_steps, seed=seed)


def check_success_target(answer) -> bool:
    """``answer``: ``0.5`` or ``0.9``, the target with the higher mastery after 40 exercises
    (10 simulated classes of 20, seed 0)."""
    name = "exercise 3 (success target)"
    if is_unanswered(answer):
        return not_answered(name)
    if answer not in (0.5, 0.9):
        raise CheckFailed(failure_message(name, f"expected 0.5 or 0.9, got {answer!r}"))
    results = success_target_results()
    best = max(results, key=lambda t: results[t]["mean"])
    summary = ", ".join(f"target {t}: {r['mean']:.2f} ± {r['ci']:.2f}" for t, r in results.items())
    return report(name, answer == best,
                  hint=("what does this simulator's student learn from: a correct answer or a wrong one? "
                        "(read the simulator's docstring, or run compare_policies as the exercise says)",
                        "in this simulator a student learns an unmastered skill with probability 0.25 after a "
                        "CORRECT answer and only 0.03 after a wrong one, and both policies only pick exercises that "
                        "still practise a skill believed unmastered. The expected learning per exercise is "
                        "p * 0.25 + (1 - p) * 0.03 for success probability p: work it out for p = 0.5 and p = 0.9"),
                  note=f"{summary}. Success is what teaches here, so easy-but-new wins; in a learner model where "
                       "mistakes teach the answer would change: the simulator's assumptions decide")
