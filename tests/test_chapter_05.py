"""Chapter 05 (choosing a meta-learner): its Glyphs comparison is chapter 03's shipped-model
comparison (same loaders, same test episodes); the stored notebook is clean."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CH03 = NOTEBOOKS / "03_prototypical_networks.ipynb"
CH05 = NOTEBOOKS / "05_choosing_a_meta_learner.ipynb"


def code_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    # IPython magics ("%matplotlib inline") are not Python: drop them before parsing
    return ["\n".join(line for line in "".join(c["source"]).splitlines() if not line.startswith("%"))
            for c in nb["cells"] if c["cell_type"] == "code"]


def assigned_value(path: Path, name: str, full: bool):
    """Evaluate the top-level ``name = ...`` assignment of a notebook with ``FULL = full``."""
    for src in code_sources(path):
        for node in ast.parse(src).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return eval(compile(ast.Expression(node.value), str(path), "eval"), {"FULL": full})
    raise AssertionError(f"{path.name} assigns no {name}")


@pytest.mark.parametrize("full", [False, True])
def test_chapter_05_tests_the_shipped_models_on_chapter_03s_episodes(full):
    """Chapter 05 says its Glyphs numbers are chapter 03's shipped-model rows: same loaders,
    same test episodes (seed, ways, shots, queries) and as many of them."""
    assert assigned_value(CH05, "TEST_EPISODES", full) == assigned_value(CH03, "BUDGET", full)["test_episodes"]
    src03, src05 = "\n".join(code_sources(CH03)), "\n".join(code_sources(CH05))
    for fragment in ("EpisodeSampler(evaluation, num_ways=5, num_shots=1, num_queries=15, seed=2026)",
                     "pretrained_protonet()", "pretrained_glyphs_maml(first_order=False)", 'maml_info["config"]["test_inner_steps"]'):
        assert fragment in src03 and fragment in src05, fragment


def test_stored_notebook_is_clean():
    nb = json.loads(CH05.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if c.get("id") != "course-setup"), \
        "store the notebook executed (the Colab set-up cell, id course-setup, is stored unexecuted)"
    text = json.dumps([c.get("outputs", []) for c in code])
    for fragment in ("/work/", "/home/", "/root/", "/tmp/", "Traceback"):
        assert fragment not in text, f"stored outputs contain {fragment!r}"
    assert any("FULL = False" in "".join(c["source"]) for c in code)
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for pointer in ("Chapter 06", "Chapter 07", "When to use which"):
        assert pointer in markdown
