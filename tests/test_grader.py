"""The grader on honest work: full marks, zero, partial credit, re-runs, resume, CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metalearn_lite.cli import main
from metalearn_lite.grading import grader as grader_module
from metalearn_lite.grading.assignment import load_assignment, visible_expected_in_sync
from metalearn_lite.grading.compare import compare
from metalearn_lite.grading.grader import grade_folder, list_submissions
from metalearn_lite.grading.harness import encode_value, split_cells
from metalearn_lite.grading.notebook_source import InvalidSubmission, notebook_to_source, submission_source
from metalearn_lite.grading.questions import ASSIGNMENTS
from metalearn_lite.grading.sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(timeout=90, call_timeout=20)

PARTIAL = '''
import torch
def compute_prototypes(support_emb, support_y, num_ways):
    # assumes sorted labels: right on the visible tests, wrong on the shuffled hidden ones
    return support_emb.reshape(num_ways, -1, support_emb.shape[1]).mean(1)
def squared_euclidean_logits(query_emb, prototypes):
    return -((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)
def episode_loss_and_accuracy(query_emb, query_y, prototypes):
    raise RuntimeError("one crash must not zero the other questions")
'''


def _rows(out: Path) -> dict[str, dict]:
    import csv

    with open(out / "grades.csv", newline="") as handle:
        return {r["student"]: r for r in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every solution and every untouched exercise, plus a partial answer, graded once."""
    root = tmp_path_factory.mktemp("grading")
    runs = {}
    for name in ASSIGNMENTS:
        subs = root / name / "subs"
        subs.mkdir(parents=True)
        shutil.copy(REPO / "solutions" / f"hw_{name}.ipynb", subs / "solution.ipynb")
        shutil.copy(REPO / "exercises" / f"hw_{name}.ipynb", subs / "untouched.ipynb")
        if name == "protonet":
            (subs / "partial.py").write_text(PARTIAL)
        out = root / name / "out"
        runs[name] = (subs, out, grade_folder(subs, name, out, jobs=2, limits=LIMITS, progress=False))
    return runs


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_solutions_score_full_marks(graded, name):
    row = _rows(graded[name][1])["solution"]
    assert row["status"] == "ok"
    assert float(row["points"]) == float(row["max_points"]) == sum(q.points for q in ASSIGNMENTS[name])


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_untouched_exercises_score_zero(graded, name):
    row = _rows(graded[name][1])["untouched"]
    assert row["status"] == "ok"  # runs top to bottom; answers raise only when called
    assert float(row["points"]) == 0
    feedback = (graded[name][1] / "feedback" / "untouched.md").read_text()
    assert "not answered yet" in feedback


def test_partial_credit_per_test_case_and_independent_questions(graded):
    out = graded["protonet"][1]
    record = json.loads((out / "students" / "partial.json").read_text())
    q = record["questions"]
    assert 0 < q["2.1"]["points"] < 3  # the sorted hidden episode passes, shuffled ones fail
    visible = {t["name"]: t["status"] for t in record["tests"] if t["question"] == "2.1" and t["visible"]}
    # the self-check already catches it: the visible shuffled-labels test fails
    assert visible == {"3-way 2-shot, sorted labels": "passed", "2-way 3-shot, sorted labels": "passed",
                       "4-way 2-shot, labels in any order (shuffled)": "failed"}
    assert q["2.2"]["points"] == 3  # unaffected by the crash in 2.3
    assert q["2.3"]["points"] == 0
    assert record["status"] == "ok"
    assert record["points"] == pytest.approx(q["2.1"]["points"] + 3)


def test_csv_has_one_column_per_question(graded):
    out = graded["np"][1]
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header == ["student", "status", "points", "max_points", "q3.1", "q3.2", "q3.3", "q3.4", "file"]


def test_rerun_is_idempotent_and_reuses_grades(graded, monkeypatch):
    subs, out, _ = graded["maml"]
    before = {p.name: p.read_bytes() for p in (out / "students").glob("*.json")}
    csv_before = (out / "grades.csv").read_bytes()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a complete, unchanged grade was recomputed")

    monkeypatch.setattr(grader_module, "run_submission", must_not_run)
    grade_folder(subs, "maml", out, jobs=2, limits=LIMITS, progress=False)
    assert (out / "grades.csv").read_bytes() == csv_before
    assert {p.name: p.read_bytes() for p in (out / "students").glob("*.json")} == before


def test_resume_after_interruption_and_failed_run_keeps_grades(graded, monkeypatch, tmp_path):
    subs, out, _ = graded["np"]
    work = tmp_path / "out"
    shutil.copytree(out, work)
    csv_before = (work / "grades.csv").read_text()
    # An interrupted run: one student's JSON never written, no grades.csv yet.
    (work / "students" / "untouched.json").unlink()
    (work / "grades.csv").unlink()
    calls = []
    real = grader_module.grade_file

    def counting(sid, *args, **kwargs):
        calls.append(sid)
        return real(sid, *args, **kwargs)

    monkeypatch.setattr(grader_module, "grade_file", counting)
    grade_folder(subs, "np", work, jobs=2, limits=LIMITS, progress=False)
    assert calls == ["untouched"]
    assert (work / "grades.csv").read_text() == csv_before
    # A run that fails for everyone (--force) must not erase the grades already there.

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(grader_module, "grade_file", broken)
    grade_folder(subs, "np", work, jobs=2, limits=LIMITS, force=True, progress=False)
    assert (work / "grades.csv").read_text() == csv_before
    assert json.loads((work / "students" / "solution.json").read_text())["points"] == 10


def test_changed_submission_is_regraded(graded, tmp_path):
    subs, out, _ = graded["np"]
    work_subs, work_out = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(subs, work_subs)
    shutil.copytree(out, work_out)
    shutil.copy(REPO / "exercises" / "hw_np.ipynb", work_subs / "solution.ipynb")
    rows = grade_folder(work_subs, "np", work_out, jobs=2, limits=LIMITS, progress=False)
    assert {r["student"]: r["points"] for r in rows} == {"solution": 0.0, "untouched": 0.0}


def test_cli_grade_reports_and_exit_code(graded, capsys):
    subs, out, _ = graded["protonet"]
    code = main(["grade", str(subs), "--assignment", "protonet", "--out", str(out), "--no-progress"])
    assert code == 0
    assert "graded 3 submission(s): 3 ok" in capsys.readouterr().out
    assert main(["grade", str(subs), "--assignment", "nope", "--out", str(out)]) == 2
    assert "assignment 'nope' not found" in capsys.readouterr().err
    assert main(["grade", str(subs / "missing"), "--assignment", "np", "--out", str(out)]) == 2


def test_student_ids_are_unique_file_stems(tmp_path):
    for name in ("alice.py", "alice.ipynb", "bob smith.py", ".hidden.py", "notes.txt", "=1+2.py", "-x.py"):
        (tmp_path / name).write_text("x = 1")
    ids = [sid for sid, _ in list_submissions(tmp_path)]
    assert ids == ["_-x", "_1+2", "alice", "alice.py", "bob_smith"]


# ----------------------------------------------------------------- strict comparison
def _t(data, shape, dtype="float64"):
    return {"kind": "tensor", "dtype": dtype, "shape": shape, "data": data}


def test_compare_is_strict_about_types_shapes_and_values():
    exp = _t([1.0, 2.0], [2])
    assert compare(exp, _t([1.0, 2.0], [2])).passed
    assert compare(exp, _t([1.0, 2.0], [2], "float32")).passed
    assert compare(exp, _t([1.0, 2.0], [1, 2])).category == "wrong_shape"
    assert compare(exp, _t([1, 2], [2], "int64")).category == "wrong_dtype"
    assert compare(exp, _t([1.0, float("nan")], [2])).category == "not_finite"
    assert compare(exp, _t([True, 2.0], [2])).category == "not_finite"  # bool is not a number
    assert compare(exp, {"kind": "unsupported", "type": "not finite"}).category == "not_finite"  # from the child
    assert compare(exp, _t([1.0, 2.1], [2])).category == "wrong_values"
    assert compare(exp, _t([1.0], [2])).category == "wrong_type"  # data/shape mismatch
    assert compare(exp, {"kind": "unsupported", "type": "AlwaysEqual"}).category == "wrong_type"
    assert compare(exp, "anything").category == "wrong_type"
    assert compare(_t([3.0], []), {"kind": "number", "value": 3.0}).passed
    pair = {"kind": "list", "items": [exp, _t([0.5], [])]}
    assert compare(pair, {"kind": "list", "items": [exp, {"kind": "number", "value": 0.5}]}).passed
    assert not compare(pair, {"kind": "list", "items": [exp]}).passed


def test_trivial_answers_fail_every_case():
    """Zeros, ones or echoing an input never pass a test (no credit for nothing)."""
    for name in ASSIGNMENTS:
        for case in load_assignment(name).cases:
            for fill in (0.0, 1.0):
                fake = json.loads(json.dumps(case.expected))

                def refill(v):
                    if v["kind"] == "tensor":
                        v["data"] = [fill] * len(v["data"])
                    elif v["kind"] == "list":
                        for item in v["items"]:
                            refill(item)

                refill(fake)
                assert not compare(case.expected, fake).passed, (case.id, fill)
            assert not compare(case.expected, case.args[0]).passed, case.id


def test_encode_value_never_raises_on_hostile_objects():
    class Evil:
        def __getattribute__(self, name):
            raise RuntimeError("boom")

    assert encode_value(Evil())["kind"] == "unsupported"
    assert encode_value(torch.zeros(2, dtype=torch.complex64))["kind"] == "unsupported"
    assert encode_value((torch.ones(2), 1.5))["kind"] == "list"


# ------------------------------------------------------------------- notebook source
def test_notebook_source_transforms_magics_and_keeps_cells():
    nb = {"cells": [{"cell_type": "code", "source": ["!pip install x\n", "%matplotlib inline\n", "a = 1\n"]},
                    {"cell_type": "markdown", "source": "# title"},
                    {"cell_type": "code", "source": "%%time\nb = 2"},
                    {"cell_type": "code", "source": "if a:\n    !ls\n# %% fake boundary\nc = 3"}]}
    source = notebook_to_source(json.dumps(nb).encode())
    cells = split_cells(source)
    assert len(cells) == 3  # the fake boundary stays inside its cell
    assert "get_ipython().system('pip install x')" in cells[0] and "a = 1" in cells[0]
    assert cells[1] == "b = 2\n"  # %%time cells are graded as their body
    assert "    get_ipython().system('ls')" in cells[2] and "c = 3" in cells[2]
    namespace = {}
    for cell in cells:
        exec(cell, namespace)
    assert (namespace["a"], namespace["b"], namespace["c"]) == (1, 2, 3)


@pytest.mark.parametrize("data,suffix", [(b"", ".py"), (b"   \n", ".py"), (b"\xff\xfe", ".py"),
                                         (b"{not json", ".ipynb"), (b'{"cells": 3}', ".ipynb"),
                                         (b"[]", ".ipynb"), (b'{"cells": [{"cell_type": "code", "source": 5}]}', ".ipynb")])
def test_bad_submissions_are_invalid(tmp_path, data, suffix):
    path = tmp_path / f"s{suffix}"
    path.write_bytes(data)
    with pytest.raises(InvalidSubmission):
        submission_source(path)


def test_symlinked_submissions_are_invalid(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("password = 'hunter2'")
    (tmp_path / "link.py").symlink_to(secret)
    with pytest.raises(InvalidSubmission, match="symbolic links"):
        submission_source(tmp_path / "link.py")


# ------------------------------------------------------------- self-check boundaries
def test_visible_expected_values_match_the_reference():
    assert visible_expected_in_sync()


def _first_float_tensor(value):
    if type(value) is list:
        found = (_first_float_tensor(v) for v in value)
    elif value.get("kind") == "list":
        found = (_first_float_tensor(v) for v in value["items"])
    else:
        found = [value if value.get("kind") == "tensor" and value["dtype"] == "float64" and value["data"] else None]
    return next((f for f in found if f is not None), None)


@pytest.mark.parametrize("change, current", [
    (lambda x: x * (1 + 1e-13), True),        # last-bit noise between CPUs
    (lambda x: x * (1 + 1e-4) + 1e-4, False),  # a real change of the reference
])
def test_visible_expected_sync_tolerates_cpu_noise_only(tmp_path, monkeypatch, change, current):
    from metalearn_lite.grading import assignment
    name = "maml"
    real = assignment.visible_expected_path(name)
    data = json.loads(real.read_text(encoding="utf-8"))
    case = _first_float_tensor(list(data.values()))
    assert case is not None, "no floating-point visible case"
    case["data"][0] = change(case["data"][0])
    copy = tmp_path / "visible_expected.json"
    copy.write_text(json.dumps(data), encoding="utf-8")
    original = assignment.visible_expected_path
    monkeypatch.setattr(assignment, "visible_expected_path", lambda n: copy if n == name else original(n))
    assert (copy not in assignment.stale_visible_expected()) is current


def test_selfcheck_never_loads_hidden_tests():
    code = ("import sys, metalearn_lite.grading.selfcheck as s; "
            "bad = [m for m in sys.modules if 'hidden' in m or m.endswith('grading.assignment') "
            "or m.endswith('grading.grader') or m.endswith('grading.sandbox')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    text = (REPO / "metalearn_lite" / "grading" / "selfcheck.py").read_text()
    assert "hidden_tests" not in text and "assignments" not in text


# ------------------------------------------------------------------- sandbox details
def test_result_lines_need_the_nonce_and_finite_numbers():
    from metalearn_lite.grading.sandbox import _parse_lines

    raw = b"\n".join([
        b'{"nonce": "abc", "case": "1.1/v0", "output": {"kind": "number", "value": 1}}',
        b'{"nonce": "xyz", "case": "1.1/v1", "output": {"kind": "number", "value": 1}}',
        b'{"nonce": "abc", "case": "1.1/v2", "output": {"kind": "number", "value": NaN}}',
        b'{"nonce": "abc", "case": "1.1/v3"',
        b'["nonce", "abc"]',
        b"\xff\xfe garbage",
    ])
    assert [r["case"] for r in _parse_lines(raw, "abc")] == ["1.1/v0"]


def test_sandbox_without_namespaces_still_runs_and_says_so():
    from metalearn_lite.grading.sandbox import run_submission

    run = run_submission("import os\nprint('hello from', os.getpid())\n", [],
                         Limits(timeout=30), namespaces=False)
    assert run.returncode == 0 and "hello from" in run.stdout_tail
    assert run.protections["network_namespace"] is False
    assert run.protections["mount_namespace"] is False
    assert run.protections["limits"]["RLIMIT_FSIZE"] == 16 << 20
    assert [r.get("event") for r in run.records] == ["loaded", "done"]


def test_points_come_from_hidden_cases_only(graded):
    """Hard-coding the public visible answers earns nothing: visible cases carry no points."""
    from metalearn_lite.grading.grader import _score

    assignment = load_assignment("protonet")
    records = [{"case": c.id, "output": c.expected} for c in assignment.cases if c.visible]
    _, questions, _, _ = _score(assignment, records + [{"event": "done"}])
    assert all(q["points"] == 0 for q in questions.values())
    records = [{"case": c.id, "output": c.expected} for c in assignment.cases if not c.visible]
    _, questions, _, _ = _score(assignment, records + [{"event": "done"}])
    assert sum(q["points"] for q in questions.values()) == assignment.max_points
