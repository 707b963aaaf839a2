"""Chapter 03 (prototypical networks): the notebook's from-scratch code equals the package's,
the exercise self-checks accept right answers and reject wrong ones, and the stored
notebook is clean (executed, python3 kernel, no absolute paths, FULL flag off)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from metalearn_lite.algorithms import ProtoNet, cosine_logits, protonet_episode, prototypes, squared_euclidean_logits
from metalearn_lite.course.checks import CheckFailed, reset_hints
from metalearn_lite.course.checks_protonet import check_cosine_logits, check_linear_head
from metalearn_lite.data import EpisodeSampler
from metalearn_lite.models import Conv4

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_prototypical_networks.ipynb"


def load_notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def scratch() -> dict:
    """The namespace of the notebook's cells tagged ``from-scratch``."""
    cells = [c for c in load_notebook()["cells"] if "from-scratch" in c.get("metadata", {}).get("tags", [])]
    assert cells, "the notebook must tag its from-scratch cells with 'from-scratch'"
    namespace = {"torch": torch, "F": torch.nn.functional}
    for cell in cells:
        exec(compile(source(cell), f"{NOTEBOOK.name}[from-scratch]", "exec"), namespace)
    return namespace


def random_support(seed: int, num_ways: int, num_shots: int, num_queries: int, dim: int):
    g = torch.Generator().manual_seed(seed)
    # shuffled support order: the from-scratch code must not rely on grouping by class
    support_y = torch.arange(num_ways).repeat_interleave(num_shots)[torch.randperm(num_ways * num_shots, generator=g)]
    support_z = torch.randn(num_ways * num_shots, dim, generator=g, dtype=torch.float64)
    query_z = torch.randn(num_ways * num_queries, dim, generator=g, dtype=torch.float64)
    return support_z, support_y, query_z


@pytest.mark.parametrize("num_ways,num_shots,dim", [(5, 1, 64), (3, 5, 2), (20, 2, 7)])
def test_from_scratch_prototypes_and_logits_equal_the_package(scratch, num_ways, num_shots, dim):
    support_z, support_y, query_z = random_support(num_ways + dim, num_ways, num_shots, 4, dim)
    ours = scratch["prototypes_from_scratch"](support_z, support_y, num_ways)
    theirs = prototypes(support_z, support_y, num_ways)
    assert ours.shape == (num_ways, dim)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    torch.testing.assert_close(scratch["squared_euclidean_logits_from_scratch"](query_z, ours),
                               squared_euclidean_logits(query_z, theirs), rtol=0, atol=1e-10)
    torch.testing.assert_close(scratch["cosine_logits_from_scratch"](query_z, ours, 3.0),
                               cosine_logits(query_z, theirs, 3.0), rtol=0, atol=1e-12)


def test_from_scratch_episode_loss_equals_protonet_episode(scratch):
    torch.manual_seed(0)
    net = ProtoNet(Conv4(num_classes=None, hidden=8)).double()
    data = torch.rand(8, 7, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    episode = EpisodeSampler(data, num_ways=4, num_shots=2, num_queries=3, seed=5).sample()
    for distance in ("euclidean", "cosine"):
        loss, acc, logits = scratch["protonet_loss_from_scratch"](net.embed, episode, distance)
        expected = protonet_episode(net.embed, episode, distance)
        torch.testing.assert_close(logits, expected.logits, rtol=0, atol=1e-9)
        torch.testing.assert_close(loss, expected.loss, rtol=0, atol=1e-12)
        assert float(acc) == pytest.approx(float(expected.accuracy))
        # and the gradients with respect to phi agree (it is the training objective)
        g_ours = torch.autograd.grad(loss, list(net.parameters()))
        g_pkg = torch.autograd.grad(protonet_episode(net.embed, episode, distance).loss, list(net.parameters()))
        for a, b in zip(g_ours, g_pkg):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def test_from_scratch_would_catch_a_wrong_prototype(scratch):
    """Guard against a vacuous comparison: a sum instead of a mean differs from the package."""
    support_z, support_y, _ = random_support(0, 3, 4, 1, 5)
    summed = torch.stack([support_z[support_y == n].sum(0) for n in range(3)])
    assert not torch.allclose(summed, prototypes(support_z, support_y, 3))


# ----------------------------------------------------------------------------- exercise checks

def test_linear_head_check(capsys):
    def right(protos):
        return 2 * protos, -(protos ** 2).sum(-1)

    def wrong_sign(protos):
        return 2 * protos, (protos ** 2).sum(-1)

    assert check_linear_head(right) is True
    assert "✓ linear_head" in capsys.readouterr().out
    assert check_linear_head(lambda protos: None) is False
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="expand"):
        check_linear_head(wrong_sign)
    with pytest.raises(CheckFailed, match=r"weight must be a tensor \[N, D\]"):
        check_linear_head(lambda protos: (protos.T, -(protos ** 2).sum(-1)))


def test_cosine_check(capsys):
    def right(q, c, scale):
        return scale * (q / q.norm(dim=-1, keepdim=True)) @ (c / c.norm(dim=-1, keepdim=True)).T

    def unnormalised(q, c, scale):
        return scale * q @ c.T

    assert check_cosine_logits(right) is True
    assert "✓ cosine_logits" in capsys.readouterr().out
    assert check_cosine_logits(lambda q, c, s: None) is False
    reset_hints()
    with pytest.raises(CheckFailed, match="lengths must not matter") as first:
        check_cosine_logits(unnormalised)
    assert "normalise" not in str(first.value)          # the idea first, the code on the next failure
    with pytest.raises(CheckFailed, match="normalise"):
        check_cosine_logits(unnormalised)


# ----------------------------------------------------------------------------- the stored notebook

def test_stored_notebook_is_clean_and_its_exercises_are_placeholders():
    nb = load_notebook()
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    text = json.dumps([c.get("outputs", []) for c in code])
    for fragment in ("/work/", "/home/", "/root/", "/tmp/", "Traceback"):
        assert fragment not in text, f"stored outputs contain {fragment!r}"
    assert any("FULL = False" in source(c) for c in code)
    exercises = [c for c in code if "check_linear_head(linear_head)" in source(c)
                 or "check_cosine_logits(my_cosine_logits)" in source(c)]
    assert len(exercises) == 2
    for cell in exercises:
        printed = "".join("".join(o.get("text", "")) for o in cell["outputs"])
        assert "not answered yet" in printed
    # the package's versions are what the notebook compares against
    assert any("protonet_episode(random_net.embed" in source(c) for c in code)
