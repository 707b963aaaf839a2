"""Hidden tests of the meta-learning-for-education homework: ``hidden_cases(qid, seed)``.

Instructor material (see ``maml.py`` in this folder): other sizes, edge cases and traps for
the naive formula, inputs drawn from the term ``seed``. Argument order follows
``metalearn_lite.education.irt``: item parameters ``a, b`` first.
"""
import torch

from metalearn_lite.grading.questions import (_edu_args, _edu_best_answered, _edu_items,
                                              _edu_many_answers, _gen, case_seed)


def hidden_cases(qid, seed):
    s = [case_seed(seed, qid, i) for i in range(6)]
    if qid in ("4.1", "4.3"):
        kind = "probability" if qid == "4.1" else "information"
        cases = [(f"{n} students, {i} items", _edu_args(s[k], kind, num_students=n, num_items=i))
                 for k, (n, i) in enumerate([(1, 7), (5, 2), (4, 10)])]
        a, b = _edu_items(_gen(s[3]), 3)
        cases.append(("extreme abilities", [a, b, torch.tensor([-8.0, 0.0, 8.0], dtype=torch.float64)]))
        return cases
    if qid == "4.2":
        a0, b0, answers0, grid0, _ = _edu_args(s[2], "posterior", num_answers=0, grid_points=7)
        prior0 = torch.rand(7, generator=_gen(s[2]), dtype=torch.float64) + 0.1   # a lumpy prior
        return [("9 answers, 21-point grid", _edu_args(s[0], "posterior", num_answers=9, grid_points=21)),
                ("1 answer, 5-point grid", _edu_args(s[1], "posterior", num_answers=1, grid_points=5)),
                ("no answers: the prior", [a0, b0, answers0, grid0, prior0 / prior0.sum()]),
                ("2,000 answers (underflows without logs)", _edu_many_answers(s[3], 2000, grid_points=61))]
    if qid == "4.4":
        cases = [(f"{n} items", _edu_args(s[k], "next", num_items=n)) for k, n in enumerate([7, 12, 15])]
        cases.append(("the best item is answered", _edu_best_answered(s[3], 9)))
        a, b, theta, _ = _edu_args(s[4], "next", num_items=5)
        cases.append(("everything answered", [a, b, theta, torch.ones(5, dtype=torch.bool)]))
        return cases
    g = _gen(s[2])
    tied_labels = (torch.arange(14) % 2).double()[torch.randperm(14, generator=g)]
    tied_scores = 0.25 * torch.randint(1, 4, (14,), generator=g).double()      # only 3 distinct values
    rev_labels = (torch.arange(10) % 2).double()[torch.randperm(10, generator=g)]
    rev_scores = -3.0 * rev_labels + torch.randn(10, generator=g, dtype=torch.float64)  # positives low
    rev_scores[rev_labels.argmax()] = rev_scores.max() + 1.0   # ... but one: the AUC is not 0
    return [("12 scores", _edu_args(s[0], "auc", num_items=12)),
            ("31 scores", _edu_args(s[1], "auc", num_items=31)),
            ("ties across classes", [tied_scores, tied_labels]),
            ("almost reversed", [rev_scores, rev_labels])]
