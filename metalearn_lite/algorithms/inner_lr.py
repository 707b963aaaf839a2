"""What ``inner_lr`` means, everywhere in the package: one name, one meaning.

``inner_lr`` is ``alpha``, the inner-loop step size: the value(s) that the inner step
(chapter 02)::

    theta'_{s+1} = theta'_s - alpha * grad L_S(theta'_s)

multiplies the gradient by. It has one type, ``InnerLR``, wherever it appears:

- a ``float`` (or a scalar tensor): one ``alpha`` for every parameter; or
- a dict parameter name -> tensor broadcastable to that parameter: learned rates, one per
  parameter entry (Meta-SGD, Li et al., 2017), the tensors themselves (with their graph),
  so that the outer loss differentiates through them.

Where it appears:

- function argument (``inner_loop``, ``functional_inner_loop``, ``meta_loss``,
  ``meta_backward``, ``reptile_adapt``, ``reptile_step``): that value;
- constructor argument (``MAML(..., inner_lr=0.01)``, ``Reptile``,
  ``education.personalise.MAMLStudent``): the float, the initial one when it is learned;
- attribute (``maml.inner_lr``, ``reptile.inner_lr``, ``student.inner_lr``): the value the
  object's inner step uses now: a float when fixed (settable), a dict name -> tensor when
  learned. How a learned rate is *stored* has its own name: ``MAML.inner_lrs`` (a
  ``ParameterDict``, keys with ``:`` for ``.``) and ``MAMLStudent.log_inner_lr``
  (``log alpha``, so that ``alpha = exp(log_inner_lr)`` stays positive).
  ``education.tutor.Tutor.inner_lr`` is the same quantity as a NumPy array (the tutor adapts
  one vector and runs without torch autograd).

In older versions, ``MAML.inner_lr`` and ``MAMLStudent.inner_lr`` were methods. The value the
attribute returns can still be called, ``maml.inner_lr()``, and returns itself (with a
``PendingDeprecationWarning``), so older notebooks and homework keep running.
"""
from __future__ import annotations

import warnings
from numbers import Real
from typing import Mapping

from torch import Tensor

__all__ = ["InnerLR", "lr_for", "check_inner_lr", "as_inner_lr"]

InnerLR = float | Tensor | Mapping[str, Tensor]


def lr_for(inner_lr: InnerLR, name: str) -> Tensor | float:
    """The step size for parameter ``name``: ``inner_lr[name]`` for a dict, else ``inner_lr``."""
    if isinstance(inner_lr, Mapping):
        if name not in inner_lr:
            raise KeyError(f"inner_lr has no entry for parameter {name!r}; it has {sorted(inner_lr)}")
        return inner_lr[name]
    return inner_lr


def check_inner_lr(value: object) -> float:
    """``value`` (a real number or a one-element tensor) as a float, or a ``ValueError`` unless it is > 0."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real) or not float(value) > 0:
        raise ValueError(f"inner_lr must be > 0 (a real number), got {value!r}")
    return float(value)


def _warn_called() -> None:
    warnings.warn("inner_lr is now an attribute (the value used by the inner step): "
                  "write `x.inner_lr`, not `x.inner_lr()`", PendingDeprecationWarning, stacklevel=3)


class _CallableFloat(float):
    """A float whose call returns itself (``maml.inner_lr()``, the older method spelling)."""

    __slots__ = ()

    def __call__(self) -> float:
        _warn_called()
        return float(self)

    def __repr__(self) -> str:
        return float.__repr__(self)


class _CallableDict(dict):
    """A dict whose call returns a plain copy of itself (``maml.inner_lr()``, the old spelling)."""

    def __call__(self) -> dict[str, Tensor]:
        _warn_called()
        return dict(self)


def as_inner_lr(value: float | Mapping[str, Tensor]) -> InnerLR:
    """The value an ``inner_lr`` attribute returns: ``value`` itself (a float or a dict
    name -> tensor, the same numbers and tensors), which can also be called for backward
    compatibility."""
    if isinstance(value, Mapping):
        return _CallableDict(value)
    return _CallableFloat(value)
