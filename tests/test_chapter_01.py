"""Chapter 01 (tasks and episodes): the notebook's from-scratch cells equal the package's
functions, and the chapter's exercise checks pass right answers and fail wrong ones."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from metalearn_lite import Episode
from metalearn_lite.algorithms import fine_tune, pretraining_loss
from metalearn_lite.course.checks import CheckFailed
from metalearn_lite.course.checks_tasks import (
    check_episodes_to_halve_ci,
    check_paired_difference_ci,
    check_split_support_query,
    reference_split,
)
from metalearn_lite.models import MLP
from metalearn_lite.tasks import SinusoidTasks
from metalearn_lite.training import mean_confidence_interval

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_tasks_and_episodes.ipynb"


def _cells(tag: str) -> list[dict]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if tag in c.get("metadata", {}).get("tags", [])]


@pytest.fixture(scope="module")
def scratch() -> dict:
    """The notebook's cells tagged ``from-scratch``, executed after the notebook's imports."""
    namespace: dict = {}
    exec("import math\nimport torch\nimport torch.nn.functional as F\n"  # noqa: S102
         "from torch.func import functional_call\nfrom metalearn_lite import Episode\n", namespace)
    cells = _cells("from-scratch")
    assert len(cells) == 3, "expected the sampler, the two baselines and the CI cells"
    for cell in cells:
        exec("".join(cell["source"]), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("num_tasks, num_shots, num_queries, seed", [(4, 5, 10, 7), (1, 1, 1, 0), (25, 10, 3, 123)])
def test_sinusoid_sampler_equals_package(scratch, num_tasks, num_shots, num_queries, seed):
    ours = scratch["sample_sinusoid_tasks"](num_tasks, num_shots, num_queries, torch.Generator().manual_seed(seed))
    theirs = SinusoidTasks().sample(num_tasks, num_shots, num_queries, generator=seed)
    assert ours.batched and theirs.batched
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(ours, name), getattr(theirs, name)), name


@pytest.mark.parametrize("num_steps, lr", [(0, 0.01), (1, 0.01), (7, 0.05)])
def test_gradient_descent_equals_fine_tune(scratch, num_steps, lr):
    torch.manual_seed(0)
    model = MLP(1, (40, 40), 1)
    theta = {k: v.detach().clone() for k, v in model.named_parameters()}
    task = SinusoidTasks().sample(1, 5, 10, generator=3)[0]
    ours = scratch["gradient_descent"](model, theta, task.support_x, task.support_y, num_steps, lr)
    theirs = fine_tune(model, theta, task.support_x, task.support_y, F.mse_loss, num_steps, lr).params
    assert set(ours) == set(theirs)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-6, rtol=0)
    if num_steps:
        # it really moved, and downhill on the support set
        moved = sum(float((ours[k] - theta[k]).abs().sum()) for k in theta)
        assert moved > 0
        loss = lambda p: F.mse_loss(torch.func.functional_call(model, p, (task.support_x,)), task.support_y)  # noqa: E731
        assert loss(ours) < loss(theta)


def test_pooled_mse_equals_pretraining_loss(scratch):
    torch.manual_seed(1)
    model = MLP(1, (40, 40), 1)
    batch = SinusoidTasks().sample(25, 5, 7, generator=4)
    torch.testing.assert_close(scratch["pooled_mse"](model, batch), pretraining_loss(model, batch, F.mse_loss))
    # pooling matters: the loss of the support points alone is a different number
    support_only = F.mse_loss(model(batch.support_x.reshape(-1, 1)), batch.support_y.reshape(-1, 1))
    assert not torch.allclose(scratch["pooled_mse"](model, batch), support_only)


@pytest.mark.parametrize("n", [2, 5, 600])
def test_ci_equals_package(scratch, n):
    values = (torch.randn(n, generator=torch.Generator().manual_seed(n)) * 3 + 1).tolist()
    mean, half_width = scratch["mean_and_ci95"](values)
    package = mean_confidence_interval(values)
    assert mean == pytest.approx(package.mean, abs=1e-12)
    assert half_width == pytest.approx(package.ci95, abs=1e-12)
    # and the package's is the textbook formula (sample std, z = 1.96)
    t = torch.tensor(values, dtype=torch.float64)
    assert package.ci95 == pytest.approx(1.96 * float(t.std(unbiased=True)) / math.sqrt(n), rel=1e-9)


# ----------------------------------------------------------------------------- exercises

def right_split(class_images, num_shots):
    n, per_class = class_images.shape[:2]
    q = per_class - num_shots
    x_shape = class_images.shape[2:]
    return Episode(class_images[:, :num_shots].reshape(n * num_shots, *x_shape),
                   torch.arange(n).repeat_interleave(num_shots),
                   class_images[:, num_shots:].reshape(n * q, *x_shape),
                   torch.arange(n).repeat_interleave(q), num_ways=n, num_shots=num_shots, num_queries=q)


def labels_not_grouped(class_images, num_shots):
    e = right_split(class_images, num_shots)
    return Episode(e.support_x, torch.arange(e.num_ways).repeat(e.num_shots), e.query_x,
                   torch.arange(e.num_ways).repeat(e.num_queries), num_ways=e.num_ways,
                   num_shots=e.num_shots, num_queries=e.num_queries)


def swapped_sets(class_images, num_shots):
    n, per_class = class_images.shape[:2]
    q = per_class - num_shots
    x_shape = class_images.shape[2:]
    # the LAST K examples as support: right shapes, wrong images
    return Episode(class_images[:, q:].reshape(n * num_shots, *x_shape), torch.arange(n).repeat_interleave(num_shots),
                   class_images[:, :q].reshape(n * q, *x_shape), torch.arange(n).repeat_interleave(q),
                   num_ways=n, num_shots=num_shots, num_queries=q)


def no_counts(class_images, num_shots):
    e = right_split(class_images, num_shots)
    return Episode(e.support_x, e.support_y, e.query_x, e.query_y)


def transposed_images(class_images, num_shots):
    # shot-major instead of class-major order: right labels, images of the wrong classes
    n, per_class = class_images.shape[:2]
    q = per_class - num_shots
    x_shape = class_images.shape[2:]
    return Episode(class_images[:, :num_shots].transpose(0, 1).reshape(n * num_shots, *x_shape),
                   torch.arange(n).repeat_interleave(num_shots),
                   class_images[:, num_shots:].transpose(0, 1).reshape(n * q, *x_shape),
                   torch.arange(n).repeat_interleave(q), num_ways=n, num_shots=num_shots, num_queries=q)


def as_tuple(class_images, num_shots):
    return right_split(class_images, num_shots).tensors()


def test_reference_split_is_the_right_split():
    images = torch.rand(4, 6, 1, 3, 3)
    want, got = right_split(images, 2), reference_split(images, 2)
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(want, name), getattr(got, name)), name
    assert (got.num_ways, got.num_shots, got.num_queries) == (4, 2, 4)


def test_check_split_support_query(capsys):
    assert check_split_support_query(right_split) is True
    assert "✓ split_support_query" in capsys.readouterr().out
    assert check_split_support_query(lambda images, k: None) is False
    assert "not answered yet" in capsys.readouterr().out
    for wrong, message in [(labels_not_grouped, "query_y: values differ"), (swapped_sets, "support_x"),
                           (no_counts, "num_ways, num_shots, num_queries"), (transposed_images, "_x: values differ"),
                           (as_tuple, "expected an Episode")]:
        with pytest.raises(CheckFailed, match=re.escape(message)):
            check_split_support_query(wrong)


def test_check_split_reports_a_shape_error_from_the_episode():
    def flat(class_images, num_shots):  # forgot to keep the image shape
        e = right_split(class_images, num_shots)
        return Episode(e.support_x.flatten(1), e.support_y, e.query_x.flatten(1), e.query_y, num_ways=e.num_ways,
                       num_shots=e.num_shots, num_queries=e.num_queries)

    def mismatched(class_images, num_shots):  # an Episode(...) that cannot be built
        e = right_split(class_images, num_shots)
        return Episode(e.support_x.flatten(1), e.support_y, e.query_x, e.query_y)

    with pytest.raises(CheckFailed, match=r"expected shape \[5, 1, 6, 6\], got shape \[5, 36\]"):
        check_split_support_query(flat)
    with pytest.raises(CheckFailed, match="your function raised EpisodeError: support_x and query_x"):
        check_split_support_query(mismatched)


def _sample_ci(values, ddof=1):
    n = len(values)
    mean = sum(values) / n
    return mean, 1.96 * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - ddof)) / math.sqrt(n)


def test_check_paired_difference_ci(capsys):
    def right(a, b):
        return _sample_ci([x - y for x, y in zip(a, b)])

    def unpaired(a, b):  # difference of means with the two CIs combined: ignores the pairing
        (ma, ha), (mb, hb) = _sample_ci(a), _sample_ci(b)
        return ma - mb, math.sqrt(ha**2 + hb**2)

    def population_std(a, b):
        return _sample_ci([x - y for x, y in zip(a, b)], ddof=0)

    def reversed_sign(a, b):
        return _sample_ci([y - x for x, y in zip(a, b)])

    def as_tensor(a, b):
        m, h = right(a, b)
        return torch.tensor([m, h])

    assert check_paired_difference_ci(right) is True
    assert "✓ paired_difference_ci" in capsys.readouterr().out
    assert check_paired_difference_ci(lambda a, b: ...) is False
    for wrong, message in [(unpaired, r"\[1\]: values differ"), (population_std, r"\[1\]: values differ"),
                           (reversed_sign, r"\[0\]: values differ"), (as_tensor, "expected a list/tuple")]:
        with pytest.raises(CheckFailed, match=message):
            check_paired_difference_ci(wrong)


def test_check_episodes_to_halve_ci(capsys):
    assert check_episodes_to_halve_ci(2400) is True
    assert check_episodes_to_halve_ci(4 * 100, num_episodes=100) is True
    assert check_episodes_to_halve_ci(...) is False
    assert "not answered yet" in capsys.readouterr().out
    for wrong in (1200, 300, 600 * math.sqrt(2)):
        with pytest.raises(CheckFailed, match="values differ|expected an integer number, got dtype float64"):
            check_episodes_to_halve_ci(wrong)


# ----------------------------------------------------------------------------- the stored notebook

def test_stored_notebook_keeps_exercises_unanswered_and_has_no_paths():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    exercises = _cells("exercise")
    assert len(exercises) == 3
    for cell in exercises:
        source = "".join(cell["source"])
        assert "...  # your" in source, source
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    texts = [{k: v for k, v in o.get("data", {}).items() if not k.startswith("image/")} | {"text": o.get("text", "")}
             for c in code for o in c.get("outputs", [])]
    outputs = json.dumps(texts) + json.dumps([o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"])
    assert outputs.count("not answered yet") == 3
    assert not re.search(r"/(work|home|tmp|root|Users)/", outputs)
    assert not any(o["output_type"] == "error" for c in code for o in c.get("outputs", []))


def test_welcome_notebook_is_stored_clean():
    """Chapter 00 has no algorithm to compare; its stored form is checked here."""
    nb = json.loads((NOTEBOOK.parent / "00_welcome.ipynb").read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    assert not any(o["output_type"] == "error" for c in code for o in c.get("outputs", []))
    texts = json.dumps([o.get("text", "") for c in code for o in c.get("outputs", [])], ensure_ascii=False)
    assert not re.search(r"/(work|home|tmp|root|Users)/", texts)
    assert texts.count("not answered yet") == 1 and "✗ mse" in texts  # the placeholder and the wrong-answer demo
    sources = ["".join(c["source"]) for c in code]
    env_cell = next(s for s in sources if "version_tuple" in s)
    assert env_cell.startswith("# NBVAL_IGNORE_OUTPUT") and "assert" in env_cell
    assert any("SupportSizeWidget(" in s and s.startswith("# NBVAL_IGNORE_OUTPUT") for s in sources)
