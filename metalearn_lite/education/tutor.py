"""The adaptive tutor's model, frozen for serving: chapter 06's MAML student model in numpy.

``MAMLStudent`` (``personalise``) is trained with torch; at answer time a tutor needs only

    w' = w0 - alpha * sum_k grad_w BCE(sigmoid(E_{i_k} . w + c_{i_k}), y_k)   (num_inner_steps times)

(the gradient of the summed BCE is ``E_S^T (p_S - y_S)``, so no autograd is needed), then
P(correct on item i) = sigmoid(E_i . w' + c_i). ``TutorModel`` holds ``E`` [I, d], ``c`` [I],
``w0`` [d], the Meta-SGD rates ``alpha`` [d] and the item names and groups, and runs that in
float64 numpy: no model is rebuilt per request and no torch thread pool is touched, so a
server answers in microseconds (``bench/tutor_load.py``).

Uncertainty (a Laplace approximation). Read the inner loop as MAP inference of ``w`` under a
Gaussian prior centred at ``w0`` whose precision is ``1 / alpha`` (a gradient step with rate
``alpha`` from ``w0`` is the first step of that MAP problem). Around the adapted ``w'`` the
posterior precision is then

    H = diag(1 / alpha) + E_S^T diag(p_S (1 - p_S)) E_S,     Sigma = H^-1,

and a group's predicted mastery m_g = mean_{i in g} p_i has the delta-method variance
grad^T Sigma grad with grad = mean_{i in g} p_i (1 - p_i) E_i. This is an approximation
(the loop takes a few steps, not Newton's), used to rank students by how sure we are.

Next item: the unanswered item with the largest expected information about ``w`` under
that posterior, p_i (1 - p_i) E_i^T Sigma E_i (with one dimension this is CAT's
maximum-Fisher-information rule, a_i^2 p_i (1 - p_i), scaled by the posterior variance).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "TutorModel",
    "TutorInputError",
    "Mastery",
    "NextItem",
    "DEFAULT_TUTOR_MODEL",
    "default_tutor_model_path",
    "load_default_tutor",
]

DEFAULT_TUTOR_MODEL = "tutor_maml_swesat.npz"


class TutorInputError(ValueError):
    """Answers a tutor cannot use (unknown item, duplicate, wrong shape); the message says what was expected."""


@dataclass(frozen=True)
class Mastery:
    """Predicted mastery: mean P(correct) over a group's items, with its approximate SD."""

    mean: float
    sd: float


@dataclass(frozen=True)
class NextItem:
    """The recommended item: its index and name, the predicted P(correct) and the information score."""

    index: int
    name: str
    p_correct: float
    information: float


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow warnings


@dataclass(frozen=True, eq=False)
class TutorModel:
    """A meta-learned student model, ready to serve (see the module docstring for the math).

    Attributes:
        item_embedding: E, [I, d] float64.
        item_bias: c, [I] float64.
        student_init: w0, [d] float64 (the meta-learned initial student vector).
        inner_lr: alpha, [d] float64 (Meta-SGD rates, > 0).
        num_inner_steps: gradient steps of the inner loop.
        item_names: I names (the ids clients use).
        groups: I group names (e.g. "quant"/"verbal", or a skill), one per item.
        metadata: where the model came from (data, training steps, command).
    """

    item_embedding: np.ndarray
    item_bias: np.ndarray
    student_init: np.ndarray
    inner_lr: np.ndarray
    num_inner_steps: int
    item_names: tuple[str, ...]
    groups: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        e = np.asarray(self.item_embedding, dtype=np.float64)
        if e.ndim != 2:
            raise ValueError(f"item_embedding must be [num_items, dim], got shape {list(e.shape)}")
        num_items, dim = e.shape
        checks = {"item_bias": (self.item_bias, (num_items,)), "student_init": (self.student_init, (dim,)),
                  "inner_lr": (self.inner_lr, (dim,))}
        arrays = {"item_embedding": e}
        for name, (value, shape) in checks.items():
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(arr.shape)}")
            arrays[name] = arr
        if not (arrays["inner_lr"] > 0).all():
            raise ValueError("inner_lr must be positive")
        if len(self.item_names) != num_items or len(self.groups) != num_items:
            raise ValueError(f"item_names and groups must have {num_items} entries, got "
                             f"{len(self.item_names)} and {len(self.groups)}")
        if len(set(self.item_names)) != num_items:
            raise ValueError("item_names must be unique")
        for name, arr in arrays.items():
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "item_names", tuple(str(n) for n in self.item_names))
        object.__setattr__(self, "groups", tuple(str(g) for g in self.groups))
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.item_names)})
        names = list(dict.fromkeys(self.groups))
        object.__setattr__(self, "group_names", tuple(names))
        member = np.array([[g == name for g in self.groups] for name in names], dtype=np.float64)  # [G, I]
        object.__setattr__(self, "_group_weights", member / member.sum(1, keepdims=True))
        object.__setattr__(self, "_prior_precision", np.diag(1.0 / arrays["inner_lr"]))
        object.__setattr__(self, "_mastery_weights",
                           np.vstack([self._group_weights, np.full((1, num_items), 1.0 / num_items)]))

    # --- construction and files -------------------------------------------------------
    @property
    def num_items(self) -> int:
        return self.item_embedding.shape[0]

    @property
    def dim(self) -> int:
        return self.item_embedding.shape[1]

    @classmethod
    def from_maml(cls, maml, item_names: Sequence[str], groups: Sequence[str], **metadata: Any) -> "TutorModel":
        """Freeze a trained ``personalise.MAMLStudent`` (its E, c, w0, Meta-SGD rates and step count)."""
        m = maml.model
        return cls(
            item_embedding=m.item_embedding.detach().double().numpy().copy(),
            item_bias=m.item_bias.detach().double().numpy().copy(),
            student_init=m.student.detach().double().numpy().copy(),
            inner_lr=maml.log_inner_lr.detach().exp().double().numpy().copy(),
            num_inner_steps=int(maml.num_inner_steps),
            item_names=tuple(item_names),
            groups=tuple(groups),
            metadata=dict(metadata),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model atomically to ``path`` (a ``.npz``: arrays + JSON header, no pickle)."""
        import io

        from ..atomic import atomic_write_bytes

        header = {"format": "metalearn-lite tutor model", "version": 1, "num_inner_steps": self.num_inner_steps,
                  "item_names": list(self.item_names), "groups": list(self.groups), "metadata": self.metadata}
        buffer = io.BytesIO()
        np.savez(buffer, item_embedding=self.item_embedding, item_bias=self.item_bias,
                 student_init=self.student_init, inner_lr=self.inner_lr,
                 header=np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8))
        path = Path(path)
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str | None = None) -> "TutorModel":
        """Read a model written by ``save`` (through ``metalearn_lite.checkpoints.read_checkpoint``, which
        checks ``expected_sha256`` when given); a file of another kind gives a ValueError naming what was
        expected, a missing one a FileNotFoundError naming the path."""
        from ..checkpoints import CheckpointNotFoundError, CorruptCheckpointError, read_checkpoint

        path = Path(path)
        expected = "a tutor model (.npz with item_embedding, item_bias, student_init, inner_lr and header, as TutorModel.save writes)"
        try:
            stored = read_checkpoint(path, expected_sha256, verify=expected_sha256 is not None)
            arrays = {k: stored[k] for k in ("item_embedding", "item_bias", "student_init", "inner_lr", "header")}
        except CheckpointNotFoundError as exc:
            raise FileNotFoundError(f"tutor model file not found: {path}") from exc
        except CorruptCheckpointError as exc:
            raise ValueError(f"{path} is not {expected}: {exc}") from exc
        except KeyError as exc:
            raise ValueError(f"{path} is not {expected}: it lacks {exc}") from exc
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
        if header.get("format") != "metalearn-lite tutor model":
            raise ValueError(f"{path}: header format must be 'metalearn-lite tutor model', got {header.get('format')!r}")
        return cls(num_inner_steps=int(header["num_inner_steps"]), item_names=tuple(header["item_names"]),
                   groups=tuple(header["groups"]), metadata=header.get("metadata", {}), **arrays)

    # --- input ------------------------------------------------------------------------
    def item_indices(self, items: Iterable[str | int]) -> np.ndarray:
        """Item ids (names, or int indices) -> [K] int64 indices; unknown ids or repeats raise TutorInputError."""
        out = []
        unknown = []
        for item in items:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if 0 <= int(item) < self.num_items:
                    out.append(int(item))
                else:
                    unknown.append(item)
            elif isinstance(item, str) and item in self._index:
                out.append(self._index[item])
            else:
                unknown.append(item)
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise TutorInputError(f"unknown item id(s) {shown}: expected one of the model's {self.num_items} "
                                  f"item names (e.g. {self.item_names[0]!r}) or an index 0..{self.num_items - 1}")
        idx = np.asarray(out, dtype=np.int64)
        if len(set(out)) != len(out):
            values, counts = np.unique(idx, return_counts=True)
            dup = values[counts > 1].tolist()
            raise TutorInputError(f"each item may be answered once; repeated: {sorted({self.item_names[i] for i in dup})}")
        return idx

    # --- inference for one student ------------------------------------------------------
    def adapt(self, items: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """The inner loop: adapted student vector w' [d] from K item indices [K] and 0/1 answers [K]."""
        w = self.student_init.copy()
        if len(items) == 0:
            return w
        e = self.item_embedding[items]  # [K, d]
        c = self.item_bias[items]
        y = np.asarray(answers, dtype=np.float64)
        for _ in range(self.num_inner_steps):
            w = w - self.inner_lr * (e.T @ (_sigmoid(e @ w + c) - y))
        return w

    def predict_proba(self, items: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """P(correct) on every item, [I], after adapting to the answers."""
        w = self.adapt(items, answers)
        return _sigmoid(self.item_embedding @ w + self.item_bias)

    def _posterior(self, items: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(correct) on every item [I], Laplace covariance of w [d, d])."""
        w = self.adapt(items, answers)
        p = _sigmoid(self.item_embedding @ w + self.item_bias)
        e = self.item_embedding[items]
        ps = p[items]
        h = self._prior_precision + (e.T * (ps * (1 - ps))) @ e
        return p, np.linalg.inv(h)

    def mastery(self, items: np.ndarray, answers: np.ndarray) -> dict[str, Mastery]:
        """Predicted mastery per group and ``"all"``: mean P(correct) over the group's items, with SD."""
        p, sigma = self._posterior(items, answers)
        slope = p * (1 - p)
        weights = self._mastery_weights  # [G+1, I]: the groups, then all items
        means = weights @ p
        grads = (weights * slope) @ self.item_embedding  # [G+1, d]
        sds = np.sqrt(np.maximum(((grads @ sigma) * grads).sum(1), 0.0))
        names = [*self.group_names, "all"]
        return {n: Mastery(float(m), float(s)) for n, m, s in zip(names, means, sds)}

    def next_item(self, items: np.ndarray, answers: np.ndarray, group: str | None = None) -> NextItem:
        """The unanswered item (in ``group`` if given) with the largest p (1 - p) E_i^T Sigma E_i."""
        p, sigma = self._posterior(items, answers)
        info = p * (1 - p) * ((self.item_embedding @ sigma) * self.item_embedding).sum(1)
        allowed = np.ones(self.num_items, dtype=bool)
        allowed[items] = False
        if group is not None:
            if group not in self.group_names:
                raise TutorInputError(f"unknown group {group!r}: expected one of {list(self.group_names)}")
            allowed &= self._group_weights[self.group_names.index(group)] > 0
        if not allowed.any():
            raise TutorInputError("no item left to ask" + (f" in group {group!r}" if group else "")
                                  + ": every candidate item is already answered")
        best = int(np.argmax(np.where(allowed, info, -np.inf)))
        return NextItem(best, self.item_names[best], float(p[best]), float(info[best]))

    # --- a class at once ----------------------------------------------------------------
    def adapt_batch(self, items: np.ndarray, answers: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Adapted student vectors [S, d] from items/answers [S, K] (``mask`` [S, K] False = no answer)."""
        items = np.asarray(items, dtype=np.int64)
        y = np.asarray(answers, dtype=np.float64)
        m = np.ones(items.shape) if mask is None else np.asarray(mask, dtype=np.float64)
        w = np.broadcast_to(self.student_init, (items.shape[0], self.dim)).copy()
        e = self.item_embedding[items]  # [S, K, d]
        c = self.item_bias[items]
        for _ in range(self.num_inner_steps):
            resid = (_sigmoid(np.einsum("skd,sd->sk", e, w) + c) - y) * m
            w = w - self.inner_lr * np.einsum("skd,sk->sd", e, resid)
        return w

    def posterior_batch(self, items: np.ndarray, answers: np.ndarray,
                        mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """For a class: P(correct) on every item [S, I] and the Laplace covariances of w [S, d, d]."""
        items = np.asarray(items, dtype=np.int64)
        m = np.ones(items.shape) if mask is None else np.asarray(mask, dtype=np.float64)
        w = self.adapt_batch(items, answers, m)
        p = _sigmoid(w @ self.item_embedding.T + self.item_bias)  # [S, I]
        e = self.item_embedding[items]  # [S, K, d]
        ps = np.take_along_axis(p, items, 1)
        h = self._prior_precision[None] + np.einsum("skd,sk,ske->sde", e, ps * (1 - ps) * m, e)
        return p, np.linalg.inv(h)

    def mastery_batch(self, items: np.ndarray, answers: np.ndarray,
                      mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mastery for a class: (means [S, G + 1], SDs [S, G + 1]); columns: ``group_names``, then all items."""
        p, sigma = self.posterior_batch(items, answers, mask)
        weights = self._mastery_weights
        means = p @ weights.T  # [S, G + 1]
        grads = np.einsum("gi,si,id->sgd", weights, p * (1 - p), self.item_embedding)
        sds = np.sqrt(np.maximum(np.einsum("sgd,sde,sge->sg", grads, sigma, grads), 0.0))
        return means, sds


def default_tutor_model_path() -> Path:
    """The shipped tutor model (MAML student model trained on SweSAT training students): the file of
    the registry entry ``tutor_maml_swesat`` in ``metalearn_lite/checkpoints/``.

    Made by ``python -m metalearn_lite.education.train_tutor`` (the command, hash, data and licence are
    in ``metalearn_lite/checkpoints/registry.json``); a numpy ``.npz``, so serving needs no torch.
    """
    from ..checkpoints import shipped_path

    return shipped_path(DEFAULT_TUTOR_MODEL, must_exist=False)


def load_default_tutor() -> TutorModel:
    """Load the shipped tutor model, checking the SHA-256 recorded in the registry."""
    from ..checkpoints import entry, shipped_path

    found = entry(DEFAULT_TUTOR_MODEL)
    return TutorModel.load(shipped_path(found["name"]), expected_sha256=found["sha256"])
