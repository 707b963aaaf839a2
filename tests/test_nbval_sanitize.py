"""The nbval sanitizers replace run-to-run noise and nothing else."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CFG = Path(__file__).with_name("nbval_sanitize.cfg")


@pytest.fixture(scope="module")
def patterns() -> list[tuple[str, str]]:
    nbval_plugin = pytest.importorskip("nbval.plugin")
    found = nbval_plugin.get_sanitize_patterns(CFG.read_text())
    # nbval silently ignores a malformed pair: every "regex:" line must have been read.
    assert len(found) == CFG.read_text().count("\nregex: ") == 6
    return found


def sanitize(patterns, text: str) -> str:
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(
    "saved, fresh",
    [
        ("[<matplotlib.lines.Line2D at 0x7f3a2c1d4e50>]", "[<matplotlib.lines.Line2D at 0x7fa01b2c3d90>]"),
        ("100%|##########| 50/50 [00:01<00:00, 31.05it/s]", "100%|##########| 50/50 [00:03<00:00, 14.20it/s]"),
        ("  0%|          | 0/10 [00:00<?, ?it/s]", "  0%|          | 0/10 [00:01<?, ?it/s]"),
        ("10/10 [01:02:03<00:00,  1.52s/it, loss=0.31]", "10/10 [00:59:58<00:00,  1.48s/it, loss=0.31]"),
        ("20/20 [00:04, 4.61it/s]", "20/20 [00:05, 3.90it/s]"),
        ("training took 1.23 s", "training took 12.8 s"),
        ("done in 0.8s, elapsed: 12 ms", "done in 1.1s, elapsed: 9 ms"),
        ("ProtoNet: 12.3 episodes/s", "ProtoNet: 9.87 episodes/s"),
        ("saved to /root/.cache/metalearn-lite/data/glyphs.npz",
         "saved to /work/main/.cache/test-cache/data/glyphs.npz"),
    ],
)
def test_noise_is_sanitized_away(patterns, saved, fresh):
    assert saved != fresh
    assert sanitize(patterns, saved) == sanitize(patterns, fresh)


@pytest.mark.parametrize(
    "saved, fresh",
    [
        ("accuracy 0.912", "accuracy 0.913"),
        ("meta-test loss 0.35 after 5 steps", "meta-test loss 0.38 after 5 steps"),
        ("in 5 steps", "in 6 steps"),
        ("10/10 [00:01<00:00, 9.05it/s, loss=0.31]", "10/10 [00:01<00:00, 9.05it/s, loss=0.32]"),
        ("label 0x1f", "label 0x2f"),  # short hex literals are data, not addresses
        ("5-way 1-shot: 91.2%", "5-way 1-shot: 90.4%"),
    ],
)
def test_results_are_not_sanitized(patterns, saved, fresh):
    assert sanitize(patterns, saved) != sanitize(patterns, fresh)


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SETUP_CELL_ID = "course-setup"  # tools/setup_cell.py: installs the package on Colab, runs before the chapter's own first cell
ONE_THREAD = re.compile(r"seed_everything\([^)]*num_threads=1\)|torch\.set_num_threads\(1\)")


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_fixes_one_torch_thread_in_its_first_code_cell(path):
    """Stored outputs are made with one torch thread (a float sum can change with the thread
    count), and scripts/test runs notebooks beside other workers, where a kernel with more
    threads than its share of cores slows down several-fold."""
    import json

    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code" and c.get("id") != SETUP_CELL_ID]
    first = "".join(cells[0]["source"]) if cells else ""
    assert ONE_THREAD.search(first), f"{path.name}: the first code cell must call seed_everything(..., num_threads=1)"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_cell_that_shows_a_figure_stores_it(path):
    """Tests and scripts/execute-notebooks run kernels with MPLBACKEND=Agg, under which
    plt.show() draws nothing unless the notebook selects the inline backend itself: chapter 02
    once stored (and the site showed) none of its three plots."""
    import json

    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code" and c.get("id") != SETUP_CELL_ID]
    first = "".join(cells[0]["source"]) if cells else ""
    showing = [i for i, c in enumerate(cells) if "plt.show()" in "".join(c["source"])]
    if showing:
        assert first.startswith("%matplotlib inline"), f"{path.name}: start the first code cell with %matplotlib inline"
    missing = [i for i in showing if not any("image/png" in o.get("data", {}) for o in cells[i].get("outputs", []))]
    assert not missing, f"{path.name}: code cells {missing} call plt.show() but store no figure"


def test_nbval_markers_stand_alone_on_their_line():
    """nbval honours ``# NBVAL_IGNORE_OUTPUT`` only when nothing follows it on the line (it
    compares the whole comment with its marker names): ``# NBVAL_IGNORE_OUTPUT  (why)``
    was silently compared, so chapter 00 failed whenever Glyphs was not cached yet."""
    import json

    from nbval.plugin import comment_markers

    bad = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            for line in "".join(cell["source"]).splitlines():
                comment = line.strip().lstrip("#").strip()
                if line.strip().startswith("#") and comment.startswith("NBVAL_") and comment not in comment_markers:
                    bad.append(f"{path.name} cell {i}: {line.strip()!r}")
    assert not bad, "nbval ignores these markers (put the reason on the next line):\n" + "\n".join(bad)
