"""Hidden tests and reference code for the neural-processes homework (instructor side)."""
import math

import torch

from metalearn_lite.grading.questions import _np_case, _randn, _gen


def aggregate(r_i):
    return r_i.mean(dim=1)


def gaussian_log_likelihood(target_y, mean, std):
    log_prob = -0.5 * math.log(2 * math.pi) - torch.log(std) - (target_y - mean) ** 2 / (2 * std ** 2)
    return log_prob.sum(dim=(1, 2))


def kl_diag_gaussians(mu_q, std_q, mu_p, std_p):
    kl = torch.log(std_p / std_q) + (std_q ** 2 + (mu_q - mu_p) ** 2) / (2 * std_p ** 2) - 0.5
    return kl.sum(dim=-1)


def elbo(target_y, mean, std, mu_q, std_q, mu_p, std_p):
    return gaussian_log_likelihood(target_y, mean, std) - kl_diag_gaussians(mu_q, std_q, mu_p, std_p)


REFERENCE = {"3.1": aggregate, "3.2": gaussian_log_likelihood, "3.3": kl_diag_gaussians,
             "3.4": elbo}


def hidden_cases(qid):
    """``[(name, args)]`` with other batch sizes, target counts and dimensions."""
    out = []
    for i, (seed, batch, num_target, d_y, d_z) in enumerate(
            [(301, 1, 3, 2, 4), (302, 4, 7, 1, 2), (303, 3, 2, 3, 5), (304, 2, 9, 2, 1)]):
        target_y, mean, std, mu_q, std_q, mu_p, std_p = _np_case(seed, batch, num_target, d_y, d_z)
        if qid == "3.1":
            args = [_randn(_gen(seed), batch, num_target + 1, d_z + 2)]
        elif qid == "3.2":
            args = [target_y, mean, std]
        elif qid == "3.3":
            args = [mu_q, std_q, mu_p, std_p]
        else:
            args = [target_y, mean, std, mu_q, std_q, mu_p, std_p]
        out.append((f"hidden {i}", args))
    return out
