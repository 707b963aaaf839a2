"""Hidden tests and reference code for the MAML homework (instructor side only).

Loaded by the grader's parent process by file path; never copied to a child, never
imported by self-checks. Expected outputs are computed here from ``REFERENCE`` at
grading time, so no expected numbers are stored anywhere.
"""
import torch

from metalearn_lite.grading.questions import _maml_grad_args, _maml_update_args


def _predict(params, x):
    w, b = params
    return x @ w + b


def _mse(params, x, y):
    return ((_predict(params, x) - y) ** 2).mean()


def inner_update(params, grads, inner_lr):
    return [p - inner_lr * g for p, g in zip(params, grads)]


def maml_meta_gradient(params, support_x, support_y, query_x, query_y, inner_lr):
    grads = torch.autograd.grad(_mse(params, support_x, support_y), params, create_graph=True)
    adapted = [p - inner_lr * g for p, g in zip(params, grads)]
    return list(torch.autograd.grad(_mse(adapted, query_x, query_y), params))


def first_order_meta_gradient(params, support_x, support_y, query_x, query_y, inner_lr):
    grads = torch.autograd.grad(_mse(params, support_x, support_y), params)
    adapted = [(p - inner_lr * g).detach().requires_grad_(True) for p, g in zip(params, grads)]
    return list(torch.autograd.grad(_mse(adapted, query_x, query_y), adapted))


REFERENCE = {"1.1": inner_update, "1.2": maml_meta_gradient, "1.3": first_order_meta_gradient}


def hidden_cases(qid):
    """``[(name, args)]`` of hidden tests for question ``qid``."""
    if qid == "1.1":
        return [(f"hidden {i}", _maml_update_args(100 + i)) for i in range(4)]
    settings = [(101, 1, 3, 3, 0.05), (102, 4, 6, 8, 0.2), (103, 3, 10, 5, 0.5),
                (104, 5, 2, 7, 0.01)]
    return [(f"hidden {i}", _maml_grad_args(*s)) for i, s in enumerate(settings)]
