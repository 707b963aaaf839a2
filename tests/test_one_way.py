"""One name, one meaning (issue 19): one accuracy, one ``inner_lr``.

- accuracy: an AST scan of ``metalearn_lite/`` finds no argmax-compare (or ``p > 0.5``-compare)
  outside ``algorithms/metrics.accuracy``; the scanner itself is shown to catch the copies that
  used to live in maml, protonet, matching, transfer, in_context and education; every caller
  (and the old public names, kept as aliases) gives exactly what its old inline formula gave
  on fixed tensors; ``education.metrics.binary_accuracy`` equals the old ``p > 0.5`` rule,
  ties and values one ulp from 0.5 included.
- ``inner_lr``: on ``MAML``, ``Reptile`` and the education ``MAMLStudent`` it is an attribute
  holding the value(s) the inner step uses (a float when fixed, a dict parameter name ->
  tensor when learned), proven by redoing one inner step by hand with it; the pre-issue-19
  method call ``inner_lr()`` still returns the same value; the constructors reject
  ``inner_lr <= 0`` with the same message.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import metalearn_lite
from metalearn_lite import Episode
from metalearn_lite.algorithms import (MAML, InContextClassifier, Reptile, matching_episode, protonet_episode,
                                       relation_episode)
from metalearn_lite.algorithms import accuracy as package_accuracy
from metalearn_lite.algorithms import maml as maml_module
from metalearn_lite.algorithms.metrics import accuracy
from metalearn_lite.algorithms.protonet import squared_euclidean_logits
from metalearn_lite.algorithms.transfer import (episode_features, fit_linear_head, pretrain_classifier_loss,
                                               prototype_classifier)
from metalearn_lite.education import metrics as edu_metrics
from metalearn_lite.education.personalise import MAMLStudent, _bce_sum, evaluate
from metalearn_lite.models import MLP

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

PACKAGE = Path(metalearn_lite.__file__).resolve().parent
HOME = ("algorithms/metrics.py", "accuracy")  # the one place allowed to compare an argmax with labels


# ----------------------------------------------------------------------------- the AST scan
_CASTS = {"float", "double", "half", "long", "int", "bool", "to", "type", "detach", "cpu", "numpy", "reshape",
          "view", "flatten", "squeeze"}


def _strip(node: ast.AST) -> ast.AST:
    """``x.float()``, ``x.reshape(-1)`` ... -> ``x`` (casts and reshapes do not change what is compared)."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CASTS:
        node = node.func.value
    return node


def _is_prediction(node: ast.AST) -> bool:
    """An argmax, or a 0.5 threshold (``p > 0.5``): the predicted class."""
    node = _strip(node)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name == "argmax"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Gt, ast.GtE, ast.Lt, ast.LtE)):
        return any(isinstance(side, ast.Constant) and side.value == 0.5 for side in (node.left, node.comparators[0]))
    return False


def accuracy_copies(source: str) -> list[int]:
    """Line numbers where a prediction (argmax or ``> 0.5``) is compared for equality with something."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            if any(_is_prediction(side) for side in (node.left, *node.comparators)):
                hits.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "eq":
            receiver = [] if isinstance(node.func.value, ast.Name) else [node.func.value]  # torch.eq(a, b) / a.eq(b)
            if any(_is_prediction(arg) for arg in (*receiver, *node.args)):
                hits.append(node.lineno)
    return hits


def _home_lines() -> range:
    tree = ast.parse((PACKAGE / HOME[0]).read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == HOME[1])
    return range(fn.lineno, fn.end_lineno + 1)


OLD_COPIES = {  # verbatim from before issue 19
    "maml": "(logits.argmax(dim=-1) == labels).float().mean()",
    "protonet": "acc = (logits.argmax(-1) == qy).float().mean(-1)",
    "matching": "acc = (log_p.argmax(-1) == episode.query_y).float().mean(-1)",
    "transfer": "return loss, (logits.argmax(-1) == labels).float().mean(-1)",
    "in_context": "acc = (logits.argmax(-1) == query_labels).float().mean(-1)",
    "education": "((probs.reshape(-1) > 0.5).float() == labels.reshape(-1).float()).float().mean().item()",
    "personalise": "acc = (((probs > 0.5).double() == y).double() * qf).sum(1) / n_q",
    "torch.eq": "torch.eq(torch.argmax(logits, -1), labels).float().mean()",
    "method eq": "logits.argmax(-1).eq(labels).sum() / len(labels)",
    "reversed": "(labels == scores.argmax(dim=1)).double().mean()",
}


@pytest.mark.parametrize("name", sorted(OLD_COPIES))
def test_the_scan_catches_every_old_copy(name):
    assert accuracy_copies(OLD_COPIES[name]) == [1], name


def test_the_scan_leaves_other_uses_of_argmax_alone():
    others = ["best = int(np.argmax(np.where(allowed, info, -np.inf)))",
              "agreement = float((nearest_2d == predictions).mean())",
              "assert cosine > 0.5", "first_skill = bank.q_matrix.argmax(1).double()"]
    assert [accuracy_copies(src) for src in others] == [[], [], [], []]


def test_no_accuracy_is_written_outside_the_one_function():
    home = _home_lines()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for line in accuracy_copies(path.read_text()):
            if not (rel == HOME[0] and line in home):
                found.append(f"{rel}:{line}")
    assert home, "algorithms/metrics.accuracy not found"
    assert accuracy_copies((PACKAGE / HOME[0]).read_text()), "the scan no longer sees the one implementation"
    assert not found, ("accuracy written again; call metalearn_lite.algorithms.metrics.accuracy "
                       f"(or education.metrics.binary_accuracy) instead: {found}")


# ----------------------------------------------------------------------------- one accuracy, numerically
def test_old_public_names_are_the_one_function():
    assert maml_module.accuracy is accuracy
    assert package_accuracy is accuracy


def test_accuracy_on_known_tensors_single_batched_ties_and_mask():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])   # argmax 0, 1, 0 (tie -> 0)
    labels = torch.tensor([0, 2, 0])
    assert accuracy(logits, labels).item() == pytest.approx(2 / 3)
    assert accuracy(logits, labels).shape == ()
    batch = torch.stack([logits, logits.flip(-1)])            # second task: argmax 2, 1, 1 (tie -> 1)
    assert accuracy(batch, torch.tensor([[0, 2, 0], [0, 0, 1]])).tolist() == pytest.approx([2 / 3, 1 / 3])
    mask = torch.tensor([True, False, True])
    assert accuracy(logits, labels, mask=mask).item() == 1.0
    assert accuracy(logits, labels, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match=r"logits \[\.\.\., M, N\] and labels \[\.\.\., M\].*\[3, 3\].*\[2\]"):
        accuracy(logits, labels[:2])
    with pytest.raises(ValueError, match="mask must have the labels' shape"):
        accuracy(logits, labels, mask=mask[:2])


@pytest.mark.parametrize("shape", [(7, 5), (3, 7, 5)])
def test_accuracy_equals_the_old_inline_formulas(shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g).round(decimals=0)   # rounding makes ties
    labels = torch.randint(0, shape[-1], shape[:-1], generator=g)
    assert torch.equal(accuracy(logits, labels), (logits.argmax(-1) == labels).float().mean(-1))
    if len(shape) == 2:  # maml.accuracy's old formula, mean over everything
        assert torch.equal(maml_module.accuracy(logits, labels), (logits.argmax(dim=-1) == labels).float().mean())


def _episode(num_tasks=3, num_ways=4, num_shots=2, num_queries=3, dim=6, seed=0) -> Episode:
    g = torch.Generator().manual_seed(seed)
    sy = torch.arange(num_ways).repeat(num_shots).expand(num_tasks, -1).clone()
    qy = torch.arange(num_ways).repeat_interleave(num_queries).expand(num_tasks, -1).clone()
    sx = torch.randn(num_tasks, num_ways * num_shots, dim, generator=g) + sy[..., None] * 0.3
    qx = torch.randn(num_tasks, num_ways * num_queries, dim, generator=g) + qy[..., None] * 0.3
    return Episode(sx, sy, qx, qy, num_ways=num_ways, num_shots=num_shots, num_queries=num_queries, batched=True)


def _old(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (scores.argmax(-1) == labels).float().mean(-1)


@pytest.mark.parametrize("batched", [True, False])
def test_every_caller_gives_what_its_old_formula_gave(batched):
    torch.manual_seed(0)
    episode = _episode() if batched else _episode()[1]
    embed = torch.nn.Linear(6, 5)
    rel = torch.nn.Sequential(torch.nn.Linear(10, 1), torch.nn.Sigmoid())
    relation = relation_episode(embed, rel, episode)
    results = {"protonet": protonet_episode(embed, episode), "matching": matching_episode(embed, episode),
               "prototype_classifier": prototype_classifier(embed, episode),
               "linear_head": fit_linear_head(embed, episode, num_steps=3)}
    pairs = {name: (r.logits, r.accuracy) for name, r in results.items()}
    pairs["relation"] = (relation.scores, relation.accuracy)
    seen = set()
    for name, (scores, acc) in pairs.items():
        assert torch.equal(acc, _old(scores, episode.query_y)), name
        assert acc.shape == ((3,) if batched else ()), name
        seen.update(acc.reshape(-1).tolist())
    assert len(seen) > 2, "fixture too easy: every accuracy the same, the comparison would prove little"
    protos = results["prototype_classifier"]
    support_z, _ = episode_features(embed, episode)
    assert torch.equal(protos.support_accuracy,
                       _old(squared_euclidean_logits(support_z, protos.prototypes), episode.support_y))


def test_pretraining_and_in_context_accuracies_equal_their_old_formulas():
    torch.manual_seed(1)
    images, labels = torch.randn(12, 6), torch.arange(12) % 4
    result = pretrain_classifier_loss(torch.nn.Linear(6, 5), torch.nn.Linear(5, 4), images, labels)
    assert torch.equal(result.accuracy, (result.logits.argmax(-1) == labels).float().mean())
    model = InContextClassifier(feature_dim=6, num_ways=4, d_model=8, num_heads=2, num_layers=1)
    ep = _episode()
    _, acc = model.loss(ep.support_x, ep.support_y, ep.query_x, ep.query_y)
    assert torch.equal(acc, _old(model(ep.support_x, ep.support_y, ep.query_x), ep.query_y))


# ----------------------------------------------------------------------------- binary answers (education)
def _probs_near_half(dtype):
    half = torch.tensor(0.5, dtype=dtype)
    near = [torch.nextafter(half, torch.tensor(1.0, dtype=dtype)), torch.nextafter(half, torch.tensor(0.0, dtype=dtype))]
    g = torch.Generator().manual_seed(3)
    return torch.cat([torch.stack([half, *near]), torch.tensor([0.0, 1.0, 1e-7, 1 - 1e-7], dtype=dtype),
                      torch.rand(40, generator=g, dtype=dtype)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_accuracy_is_the_old_threshold_rule_exactly(dtype):
    probs = _probs_near_half(dtype)
    g = torch.Generator().manual_seed(4)
    for labels in (torch.randint(0, 2, probs.shape, generator=g).to(dtype), torch.ones_like(probs),
                   torch.zeros_like(probs)):
        old = ((probs.reshape(-1) > 0.5).float() == labels.reshape(-1).float()).float().mean().item()
        assert edu_metrics.accuracy(probs, labels) == old           # the old name: a pooled float
        assert edu_metrics.binary_accuracy(probs, labels).item() == old
    # the prediction really is argmax(1 - p, p): 1 exactly when p > 0.5, ties (p = 0.5) to 0
    assert edu_metrics.binary_accuracy(probs[:3], torch.tensor([0.0, 1.0, 0.0], dtype=dtype)).item() == 1.0


def test_binary_accuracy_checks_its_labels():
    with pytest.raises(ValueError, match="labels must be 0/1"):
        edu_metrics.binary_accuracy(torch.tensor([0.2, 0.7]), torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        edu_metrics.binary_accuracy(torch.tensor([0.2, 0.7]), torch.tensor([0.0]))


def test_personalisation_scores_keep_their_per_student_accuracy():
    g = torch.Generator().manual_seed(5)
    test = torch.randint(0, 2, (9, 12), generator=g).double()
    test[torch.rand(9, 12, generator=g) < 0.3] = float("nan")
    test[:, :2] = torch.tensor([1.0, 0.0])                        # two observed support items per student
    support = torch.tensor([[0, 1]]).expand(9, -1)
    table = torch.rand(9, 12, generator=g)
    table[0, 5] = 0.5                                             # a tie

    def predict(items, answers):
        return table

    scores = evaluate(predict, test, support, num_bootstrap=0)
    probs = table.double().clamp(1e-6, 1 - 1e-6)                 # the old code, verbatim
    query = ~torch.isnan(test)
    query.scatter_(1, support, False)
    y = torch.nan_to_num(test.double(), nan=0.0)
    qf = query.double()
    old = (((probs > 0.5).double() == y).double() * qf).sum(1) / qf.sum(1)
    assert scores.accuracy == edu_metrics.mean_ci(old)
    assert 0 < scores.accuracy[0] < 1


# ----------------------------------------------------------------------------- one inner_lr
def _task(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 1, generator=g)
    return x, torch.sin(x)


def _one_step_by_hand(model, params, x, y, loss_fn, inner_lr):
    grads = torch.autograd.grad(loss_fn(torch.func.functional_call(model, params, (x,)), y), list(params.values()))
    return {k: p - (inner_lr[k] if isinstance(inner_lr, Mapping) else inner_lr) * g
            for (k, p), g in zip(params.items(), grads)}


def _close(a, b):
    return all(torch.allclose(a[k], b[k], atol=1e-6) for k in b)


def test_fixed_inner_lr_is_the_float_used_on_maml_and_reptile():
    x, y = _task()
    for cls in (MAML, Reptile):
        torch.manual_seed(0)
        learner = cls(MLP(1, (8,), 1), F.mse_loss, inner_lr=0.03, num_inner_steps=1)
        assert isinstance(learner.inner_lr, float) and learner.inner_lr == 0.03, cls
        learner.inner_lr = 0.2                                          # settable, and then used
        assert learner.inner_lr == 0.2
        adapted = learner.adapt(x, y, num_inner_steps=1).params
        assert _close(adapted, _one_step_by_hand(learner.model, learner.params(), x, y, F.mse_loss, 0.2)), cls
        with pytest.warns(PendingDeprecationWarning, match="x.inner_lr"):
            assert learner.inner_lr() == 0.2 and type(learner.inner_lr()) is float
        with pytest.raises(ValueError, match="inner_lr must be > 0"):
            learner.inner_lr = 0.0
        with pytest.raises(ValueError, match="inner_lr must be > 0"):
            cls(MLP(1, (8,), 1), F.mse_loss, inner_lr=-1.0)


def test_learned_inner_lr_is_a_dict_of_the_learned_tensors_on_maml_and_the_student():
    maml = MAML(MLP(1, (8,), 1), F.mse_loss, inner_lr=0.05, learn_inner_lr=True)
    student = MAMLStudent(num_items=7, dim=3, num_inner_steps=1, inner_lr=0.05, seed=0)
    with torch.no_grad():
        student.log_inner_lr.copy_(torch.tensor([0.01, 0.1, 0.3]).log())
    for learner, adapted_names in ((maml, set(maml.params())), (student, {"student"})):
        lr = learner.inner_lr
        assert isinstance(lr, Mapping) and set(lr) == adapted_names       # keys: the adapted parameters
        assert all(isinstance(v, torch.Tensor) and v.requires_grad for v in lr.values())  # the graph to the outer loss
        with pytest.warns(PendingDeprecationWarning):
            called = learner.inner_lr()
        assert type(called) is dict and set(called) == set(lr)
        assert all(torch.equal(called[k], lr[k]) for k in lr)
    assert all(maml.inner_lr[k.replace(":", ".")] is v for k, v in maml.inner_lrs.items())
    assert torch.allclose(student.inner_lr["student"], torch.tensor([0.01, 0.1, 0.3]))
    with pytest.raises(ValueError, match="learns its inner_lr"):
        maml.inner_lr = 0.1
    with pytest.raises(ValueError, match="inner_lr must be > 0"):
        MAMLStudent(num_items=7, inner_lr=0.0)

    # the value is what each inner step uses: MAML ...
    x, y = _task(1)
    with torch.no_grad():
        for v in maml.inner_lrs.values():
            v.uniform_(0.01, 0.3)
    assert _close(maml.adapt(x, y, num_inner_steps=1).params,
                  _one_step_by_hand(maml.model, maml.params(), x, y, F.mse_loss, maml.inner_lr))
    # ... and the student: w' = w - alpha * grad (summed BCE), alpha = inner_lr["student"]
    items, answers = torch.tensor([[0, 3, 5]]), torch.tensor([[1.0, 0.0, 1.0]])
    model = student.model
    by_hand = _one_step_by_hand(model, {"student": model.student}, items[0], answers[0], _bce_sum,
                                student.inner_lr)["student"]
    assert torch.allclose(student.adapted_students(items, answers)[0], by_hand.detach(), atol=1e-6)


def test_inner_lr_has_one_meaning_in_the_docs_too():
    from metalearn_lite.algorithms import inner_lr as convention
    from metalearn_lite.algorithms import reptile
    for doc in (maml_module.__doc__, reptile.__doc__, MAMLStudent.__doc__):
        assert "inner_lr" in doc and ("inner_lr.py" in doc or "algorithms.inner_lr" in doc)
    for where in ("maml.inner_lr", "reptile.inner_lr", "student.inner_lr", "Tutor.inner_lr", "log_inner_lr"):
        assert where in convention.__doc__
    assert math.isclose(convention.check_inner_lr(0.5), 0.5)
    with pytest.raises(ValueError, match="inner_lr must be > 0"):
        convention.check_inner_lr("0.1")
