"""Hidden tests and reference code for the meta-learning-for-education homework (instructor side).

Argument order follows ``metalearn_lite.education.irt``: item parameters ``a, b`` first."""
import torch
import torch.nn.functional as F

from metalearn_lite.grading.questions import _edu_args, _edu_best_answered, _edu_items, _edu_many_answers, _gen


def irt_probability(a, b, theta):
    return torch.sigmoid(a[None, :] * (theta[:, None] - b[None, :]))


def ability_posterior(a, b, answers, grid, prior):
    logits = a[:, None] * (grid[None, :] - b[:, None])                        # [K, G]
    loglik = (answers[:, None] * F.logsigmoid(logits)
              + (1 - answers[:, None]) * F.logsigmoid(-logits)).sum(0)         # [G]
    return torch.softmax(loglik + torch.log(prior), dim=0)


def fisher_information(a, b, theta):
    p = irt_probability(a, b, theta)
    return a[None, :] ** 2 * p * (1 - p)


def next_item(a, b, theta_hat, answered):
    if bool(answered.all()):
        return torch.tensor(-1)
    info = fisher_information(a, b, theta_hat.reshape(1))[0]
    return info.masked_fill(answered, -1.0).argmax()


def rank_auc(scores, labels):
    # Mann-Whitney U from pairwise comparisons: P(score_pos > score_neg) + 0.5 P(tie)
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).double().sum()
    ties = (pos[:, None] == neg[None, :]).double().sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


REFERENCE = {"4.1": irt_probability, "4.2": ability_posterior, "4.3": fisher_information,
             "4.4": next_item, "4.5": rank_auc}


def hidden_cases(qid):
    """``[(name, args)]`` with other sizes, edge cases and traps for the naive formula."""
    if qid in ("4.1", "4.3"):
        kind = "probability" if qid == "4.1" else "information"
        cases = [(f"{s} students, {i} items", _edu_args(seed, kind, num_students=s, num_items=i))
                 for seed, s, i in [(401, 1, 7), (402, 5, 2), (403, 4, 10)]]
        a, b = _edu_items(_gen(404), 3)
        cases.append(("extreme abilities", [a, b, torch.tensor([-8.0, 0.0, 8.0], dtype=torch.float64)]))
        return cases
    if qid == "4.2":
        return [("9 answers, 21-point grid", _edu_args(411, "posterior", num_answers=9, grid_points=21)),
                ("1 answer, 5-point grid", _edu_args(412, "posterior", num_answers=1, grid_points=5)),
                ("no answers: the prior", _edu_args(413, "posterior", num_answers=0, grid_points=7)),
                ("2,000 answers (underflows without logs)", _edu_many_answers(414, 2000, grid_points=61))]
    if qid == "4.4":
        cases = [(f"{n} items", _edu_args(seed, "next", num_items=n)) for seed, n in [(422, 4), (432, 9), (433, 15)]]
        cases.append(("the best item is answered", _edu_best_answered(424, 5)))
        a, b, theta, _ = _edu_args(425, "next", num_items=5)
        cases.append(("everything answered", [a, b, theta, torch.ones(5, dtype=torch.bool)]))
        return cases
    tied = torch.tensor([0.5, 0.5, 0.5, 0.9, 0.1, 0.5], dtype=torch.float64)
    return [("12 scores", _edu_args(431, "auc", num_items=12)),
            ("31 scores", _edu_args(432, "auc", num_items=31)),
            ("ties across classes", [tied, torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)]),
            ("almost reversed", [torch.tensor([0.0, 1.0, 3.0, 2.0, 4.0, 5.0], dtype=torch.float64),
                                 torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)])]
