"""Hidden tests of the MAML homework: ``hidden_cases(qid, seed)`` -> ``[(name, args)]``.

Instructor material, copied into the private assignment folder by
``metalearn homework private``; it is not part of the installed package. The inputs are
drawn from the term ``seed`` (sizes and traps are fixed, the numbers change every term), so
answers leaked from an earlier term fail. Expected outputs are computed by the grader from
the reference (the solution notebook) at grading time.
"""
from metalearn_lite.grading.questions import _maml_grad_args, _maml_update_args, case_seed


def hidden_cases(qid, seed):
    if qid == "1.1":
        lrs = [0.1, 0.5, 0.01, 1.0]
        return [(f"hidden {i}", _maml_update_args(case_seed(seed, qid, i), lr)) for i, lr in enumerate(lrs)]
    settings = [(1, 3, 3, 0.05), (4, 6, 8, 0.2), (3, 10, 5, 0.5), (5, 2, 7, 0.01)]
    return [(f"hidden {i}", _maml_grad_args(case_seed(seed, qid, i), *s)) for i, s in enumerate(settings)]
