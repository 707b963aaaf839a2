"""Seeds and thread counts, so printed numbers are identical run after run.

Measured on the course machines: a float32 sum changed between 1 and 2 threads, and
``torch.use_deterministic_algorithms(True)`` does not fix that. Notebooks therefore fix
the thread count as well as the seeds.
"""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "make_generator"]


def seed_everything(seed: int, num_threads: int | None = 2) -> torch.Generator:
    """Seed Python, NumPy and torch; fix torch's intra-op thread count.

    Returns a ``torch.Generator`` seeded with ``seed`` for code that takes one.
    """
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    return make_generator(seed)


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A ``torch.Generator`` from a seed (or the generator itself, passed through)."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    gen.manual_seed(0 if seed is None else int(seed))
    return gen
