"""Hidden tests of the in-context-learning homework: ``hidden_cases(qid, seed)``.

Instructor material (see ``maml.py`` in this folder): other batch sizes, context and target
counts, dimensions and GP kernels than the visible tests, inputs drawn from the term ``seed``.
The traps: a d_y wider than 1 (5.1), a permuted context, a lone target and a single context
row (5.2: an answer whose targets see each other, or whose context sees the targets, fails),
a std pressed onto its floor and d_y > 1 (5.3), a model with more label slots than the episode
has classes (5.4), kernel hyperparameters other than the package's default (5.5).
"""
import torch

from metalearn_lite.grading.questions import _gen, _gp_gap_args, _icl_args, case_seed


def _tokens(qid, seed):
    sizes = [(3, 5, 2, 1, 1), (1, 1, 4, 2, 1), (2, 3, 3, 1, 3), (4, 7, 1, 2, 2)]
    return [(f"hidden {i}", _icl_args(case_seed(seed, qid, i), "tokens", batch=b, n_c=n_c, n_t=n_t,
                                      d_x=d_x, d_y=d_y))
            for i, (b, n_c, n_t, d_x, d_y) in enumerate(sizes)]


def _attention(qid, seed):
    cases = []
    queries, keys, values, n_c = _icl_args(case_seed(seed, qid, 0), "attention", batch=2, n_c=5, n_t=4, d=6)
    cases.append(("hidden 0", [queries, keys, values, n_c]))
    perm = torch.cat([torch.randperm(n_c, generator=_gen(case_seed(seed, qid, 1))), torch.arange(n_c, n_c + 4)])
    cases.append(("hidden 1: the context of hidden 0 permuted",
                  [queries[:, perm], keys[:, perm], values[:, perm], n_c]))
    cases.append(("hidden 2: one target alone",
                  _icl_args(case_seed(seed, qid, 2), "attention", batch=3, n_c=6, n_t=1, d=3)))
    cases.append(("hidden 3: one context row, many targets",
                  _icl_args(case_seed(seed, qid, 3), "attention", batch=1, n_c=1, n_t=6, d=4)))
    cases.append(("hidden 4: many targets, d = 16",
                  _icl_args(case_seed(seed, qid, 4), "attention", batch=2, n_c=3, n_t=9, d=16)))
    return cases


def _loglik(qid, seed):
    cases = []
    for i, (b, n_t, d_y, min_std) in enumerate([(3, 7, 1, 0.1), (1, 2, 3, 0.001), (4, 5, 2, 0.05), (2, 9, 1, 0.3)]):
        args = _icl_args(case_seed(seed, qid, i), "loglik", batch=b, n_t=n_t, d_y=d_y, min_std=min_std)
        if i == 3:
            args[2] = args[2] - 4.0  # softplus(raw) near 0: the std sits on its floor
        cases.append((f"hidden {i}", args))
    return cases


def _episode(qid, seed):
    # (batch, ways in the episode, shots, queries, feature dim, the model's num_ways)
    settings = [(2, 5, 1, 3, 8, 5), (1, 4, 3, 2, 2, 4), (3, 2, 5, 4, 3, 6), (2, 6, 2, 1, 4, 6)]
    return [(f"hidden {i}", [*_icl_args(case_seed(seed, qid, i), "episode", batch=b, n_t=n_q, d=d,
                                        num_ways=ways, num_shots=shots), model_ways])
            for i, (b, ways, shots, n_q, d, model_ways) in enumerate(settings)]


def _gap(qid, seed):
    cases = []
    for i, (b, n_c, n_t) in enumerate([(2, 1, 6), (3, 10, 5), (1, 20, 15), (2, 4, 12)]):
        s = case_seed(seed, qid, i)
        u = torch.rand(3, generator=_gen(s + 1), dtype=torch.float64).tolist()
        lengthscale, scale, noise = 0.25 + 0.75 * u[0], 0.5 + u[1], 0.05 + 0.1 * u[2]
        cases.append((f"hidden {i}", _gp_gap_args(s, batch=b, n_c=n_c, n_t=n_t, lengthscale=lengthscale,
                                                  scale=scale, noise=noise)))
    return cases


_BUILDERS = {"5.1": _tokens, "5.2": _attention, "5.3": _loglik, "5.4": _episode, "5.5": _gap}


def hidden_cases(qid, seed):
    return _BUILDERS[qid](qid, seed)
