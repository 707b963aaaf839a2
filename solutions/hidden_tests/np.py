"""Hidden tests of the neural-processes homework: ``hidden_cases(qid, seed)``.

Instructor material (see ``maml.py`` in this folder): other batch sizes, target counts and
dimensions than the visible tests, inputs drawn from the term ``seed``.
"""
from metalearn_lite.grading.questions import _gen, _np_case, _randn, case_seed


def hidden_cases(qid, seed):
    out = []
    for i, (batch, num_target, d_y, d_z) in enumerate([(1, 3, 2, 4), (4, 7, 1, 2), (3, 2, 3, 5), (2, 9, 2, 1)]):
        s = case_seed(seed, qid, i)
        target_y, mean, std, mu_q, std_q, mu_p, std_p = _np_case(s, batch, num_target, d_y, d_z)
        if qid == "3.1":
            args = [_randn(_gen(s), batch, num_target + 1, d_z + 2)]
        elif qid == "3.2":
            args = [target_y, mean, std]
        elif qid == "3.3":
            args = [mu_q, std_q, mu_p, std_p]
        else:
            args = [target_y, mean, std, mu_q, std_q, mu_p, std_p]
        out.append((f"hidden {i}", args))
    return out
