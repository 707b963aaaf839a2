"""The two baselines every meta-learner must beat (chapter 01).

1. *From scratch*: a fresh network trained by gradient descent on the support set only.
2. *Pretrained then fine-tuned*: one network trained on the pooled data of many tasks
   (``pretraining_loss``), then fine-tuned on each new task's support set.

Fine-tuning is the same gradient descent as MAML's inner loop, so both use
``maml.inner_loop`` (with the inner gradient held constant: nothing is meta-learned).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..tasks.episode import Episode
from .maml import InnerLoopResult, inner_loop

__all__ = ["pretraining_loss", "fine_tune"]


def pretraining_loss(model: nn.Module, episode: Episode, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Loss of one shared network on all support and query points of a batch of tasks.

    ``episode`` may be batched (``[B, n, ...]``): every point of every task is pooled.
    For regression this learns the average function over tasks (for sinusoids, close to 0).
    """
    lead = 2 if episode.batched else 1
    x = torch.cat([episode.support_x.flatten(0, lead - 1), episode.query_x.flatten(0, lead - 1)])
    y = torch.cat([episode.support_y.flatten(0, lead - 1), episode.query_y.flatten(0, lead - 1)])
    return loss_fn(model(x), y)


def fine_tune(model: nn.Module, params: dict[str, Tensor] | None, support_x: Tensor, support_y: Tensor,
              loss_fn: Callable[[Tensor, Tensor], Tensor], num_steps: int, lr: float,
              trace: bool = False) -> InnerLoopResult:
    """Plain gradient descent on one task's support set from ``params`` (default: the model's).

    From scratch: pass a freshly initialised model. Returns detached adapted parameters.
    """
    params = dict(model.named_parameters()) if params is None else params
    with torch.no_grad():
        return inner_loop(model, params, support_x, support_y, loss_fn, num_inner_steps=num_steps,
                          inner_lr=lr, first_order=True, trace=trace)


def predict(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``model(x; params)``."""
    return functional_call(model, params, (x,))
