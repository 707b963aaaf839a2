"""Public practice vs private grading: the package and its wheel hold no reference code and
no hidden inputs; the grader reads the instructor's private folder, whose hidden inputs
change with the term seed; visible tests earn no points."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.assignment import (PRIVATE_ENV, AssignmentFolderError, load_assignment,
                                               private_folder)
from metalearn_lite.grading.authoring import BEGIN, END
from metalearn_lite.grading.grader import _score
from metalearn_lite.grading.private import write_private_folder
from metalearn_lite.grading.questions import ASSIGNMENTS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "metalearn_lite"
GRADED = {q.function: name for name, qs in ASSIGNMENTS.items() for q in qs}
# The course's own library implements these for its chapters (item response theory, the
# AUC metric, the neural process's mean aggregator), as a student reading the package could
# find; the sandbox hides the package from graded code, so importing them there fails.
# Any other graded name with the graded signature, or answer line, is a leak.
LIBRARY_TWINS = {("metalearn_lite/education/irt.py", "fisher_information"),
                 ("metalearn_lite/education/metrics.py", "rank_auc"),
                 ("metalearn_lite/algorithms/neural_process.py", "aggregate")}


def _solution_regions() -> dict[str, list[str]]:
    """``{function: [answer lines]}`` from the BEGIN/END regions of solutions/."""
    regions: dict[str, list[str]] = {}
    for path in sorted((REPO / "solutions").glob("hw_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            if BEGIN not in src:
                continue
            fn = re.search(r"def (\w+)\(", src)[1]
            body = src.split(BEGIN)[1].split(END)[0]
            regions[fn] = [" ".join(line.split()) for line in body.splitlines() if len(line.strip()) >= 20]
    return regions


def _signatures() -> dict[str, list[str]]:
    """``{graded function: parameter names}`` from the solution notebooks."""
    sigs = {}
    for path in sorted((REPO / "solutions").glob("hw_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code" and BEGIN in "".join(cell["source"]):
                for node in ast.parse("".join(cell["source"])).body:
                    if isinstance(node, ast.FunctionDef):
                        sigs[node.name] = [a.arg for a in node.args.args]
    return sigs


def _leaks(files: dict[str, str]) -> list[str]:
    """Reference answers, graded-function definitions and hidden-test recipes in ``files``."""
    regions, sigs, found = _solution_regions(), _signatures(), []
    assert len(regions) == len(GRADED) == 20 and all(regions.values())
    for name, text in files.items():
        if "hidden_tests" in Path(name).name or re.search(r"def +hidden_cases *\(", text):
            found.append(f"{name}: hidden tests")
        flat = " ".join(text.split())
        for fn, lines in regions.items():
            if (name, fn) not in LIBRARY_TWINS:
                found += [f"{name}: answer line of {fn}: {line}" for line in lines if line in flat]
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(text)):
                if (isinstance(node, ast.FunctionDef) and node.name in sigs
                        and [a.arg for a in node.args.args] == sigs[node.name]
                        and (name, node.name) not in LIBRARY_TWINS):
                    found.append(f"{name}: defines {node.name}{tuple(sigs[node.name])}")
    return found


def test_the_leak_detector_finds_the_old_hidden_tests_file():
    """The checks below can fail: the file that used to ship in the package is caught."""
    old = '''def compute_prototypes(support_emb, support_y, num_ways):
    return torch.stack([support_emb[support_y == k].mean(dim=0) for k in range(num_ways)])

def hidden_cases(qid):
    return []
'''
    found = _leaks({"metalearn_lite/grading/assignments/protonet/hidden_tests.py": old})
    assert any("hidden tests" in f for f in found)
    assert any("answer line of compute_prototypes" in f for f in found)
    assert any("defines compute_prototypes" in f for f in found)


def test_installed_package_holds_no_reference_code_or_hidden_tests():
    files = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8", errors="replace")
             for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".md", ".txt")}
    assert len(files) > 40
    assert _leaks(files) == []
    assert not list(PACKAGE.rglob("hidden_tests*"))


@pytest.mark.slow
def test_wheel_holds_no_reference_code_or_hidden_tests(tmp_path):
    """Build the wheel offline from a copy of the package (about 5 s here) and read it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "metalearn_lite", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = {n: archive.read(n).decode("utf-8", errors="replace") for n in archive.namelist()
                 if n.endswith((".py", ".json", ".md", ".txt", ".ipynb"))}
    assert "metalearn_lite/grading/grader.py" in files
    assert "metalearn_lite/grading/assignments/maml/visible_expected.json" in files
    assert _leaks(files) == []


# ------------------------------------------------------------------ the private folder
def test_private_command_writes_reference_hidden_tests_and_term_seed(tmp_path, capsys):
    out = tmp_path / "private"
    assert main(["homework", "private", str(out), "--seed", "7", "--solutions", str(REPO / "solutions")]) == 0
    assert "term seed 7" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(ASSIGNMENTS)
    for name in ASSIGNMENTS:
        assert sorted(p.name for p in (out / name).iterdir()) == ["hidden_tests.py", "solution.ipynb", "term.json"]
        assert json.loads((out / name / "term.json").read_text()) == {"seed": 7}
        assert (out / name).stat().st_mode & 0o077 == 0  # private to the instructor
        loaded = load_assignment(name, out)
        assert [q.points for q in loaded.questions] == [q.points for q in ASSIGNMENTS[name]]
        assert all(any(not c.visible for c in loaded.cases if c.qid == q.qid) for q in loaded.questions)
    nb = json.loads((out / "np" / "solution.ipynb").read_text())
    meta = [c["metadata"]["metalearn"] for c in nb["cells"] if c["metadata"].get("metalearn", {}).get("function")]
    assert [m["function"] for m in meta] == ["aggregate", "gaussian_log_likelihood", "kl_diag_gaussians", "elbo"]
    assert main(["homework", "private", str(tmp_path / "x"), "--solutions", str(tmp_path)]) == 2
    assert "no hw_*.ipynb" in capsys.readouterr().err


def test_a_new_term_seed_changes_every_hidden_input_so_leaked_answers_fail(tmp_path):
    write_private_folder(tmp_path / "fall", REPO / "solutions", seed=2025)
    write_private_folder(tmp_path / "spring", REPO / "solutions", seed=2026)
    for name in ASSIGNMENTS:
        old, new = load_assignment(name, tmp_path / "fall"), load_assignment(name, tmp_path / "spring")
        assert old.seed == 2025 and new.seed == 2026
        assert [c.id for c in old.cases] == [c.id for c in new.cases]
        for o, n in zip(old.cases, new.cases):
            if o.visible:
                assert o.args == n.args and o.expected == n.expected  # the public self-checks
            else:
                assert o.args != n.args, o.id
        # Last term's answers replayed (a leaked table of outputs) earn nothing this term,
        # except where a small discrete answer (an item index, an AUC over 6 scores) can
        # coincide by chance.
        replay = [{"case": n.id, "output": o.expected} for o, n in zip(old.cases, new.cases) if not n.visible]
        _, questions, _, _ = _score(new, replay + [{"event": "done"}])
        points = sum(q["points"] for q in questions.values())
        assert points <= (0.15 * new.max_points if name == "education" else 0), (name, points)
    same = load_assignment("np", tmp_path / "fall")
    write_private_folder(tmp_path / "again", REPO / "solutions", seed=2025)
    assert [c.args for c in load_assignment("np", tmp_path / "again").cases] == [c.args for c in same.cases]


def test_grading_without_the_private_folder_names_what_is_expected(tmp_path, monkeypatch, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.py").write_text("x = 1\n")
    monkeypatch.delenv(PRIVATE_ENV, raising=False)
    with pytest.raises(AssignmentFolderError, match="metalearn homework private"):
        private_folder(None)
    assert main(["grade", str(subs), "--assignment", "np", "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "private assignment folder" in err and "--tests" in err
    assert not (tmp_path / "o" / "grades.csv").exists()
    folder = tmp_path / "private"
    write_private_folder(folder, REPO / "solutions", seed=3)
    (folder / "np" / "hidden_tests.py").unlink()
    (folder / "maml" / "term.json").write_text("{}")
    (folder / "protonet" / "solution.ipynb").unlink()
    broken = {"np": "hidden_tests.py", "maml": "term.json", "protonet": "solution.ipynb", "nope": "not found"}
    for name, expected in broken.items():
        code = main(["grade", str(subs), "--assignment", name, "--tests", str(folder),
                     "--out", str(tmp_path / "o"), "--no-progress"])
        assert code == 2, name
        assert expected in capsys.readouterr().err, name
    (folder / "education" / "hidden_tests.py").write_text("def hidden_cases(qid, seed):\n    return []\n")
    with pytest.raises(AssignmentFolderError, match="no hidden cases"):
        load_assignment("education", folder)


def test_loading_the_reference_leaves_the_graders_torch_state_alone(tmp_path):
    """The solution notebooks seed torch and set one thread; the grader's process keeps its own."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch.manual_seed(123)
        state = torch.random.get_rng_state()
        write_private_folder(tmp_path, REPO / "solutions", seed=9)
        load_assignment("maml", tmp_path)
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.random.get_rng_state(), state)
    finally:
        torch.set_num_threads(before)
