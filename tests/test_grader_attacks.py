"""The grader against hostile submissions (tests/attacks/, see its README).

Each attack is graded next to an honest solution; the checks: no attack earns a point,
the honest solution gets full marks, every file has a status row in grades.csv, the
grader survives, and the side effects the attacks aimed for (overwritten grades or
submissions, planted files, network connections, stray processes) did not happen.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from metalearn_lite.grading.assignment import ASSIGNMENTS_DIR, load_assignment
from metalearn_lite.grading.grader import grade_folder
from metalearn_lite.grading.sandbox import UID_BASE, Limits

REPO = Path(__file__).resolve().parents[1]
ATTACKS = REPO / "tests" / "attacks"
HONEST = REPO / "solutions" / "hw_protonet.ipynb"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")


class _Server:
    """A TCP server on 127.0.0.1 that records every connection it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(1024) or b"<connected>")
                except OSError:
                    self.received.append(b"<connected>")

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _stage(names: list[str], subs: Path, out: Path, port: int, canary: Path) -> None:
    subs.mkdir(parents=True)
    replacements = {
        "@@OUT@@": str(out), "@@SUBS@@": str(subs), "@@PORT@@": str(port),
        "@@HIDDEN@@": str(ASSIGNMENTS_DIR / "protonet" / "hidden_tests.py"),
        "@@SOLUTIONS@@": str(HONEST), "@@CANARY@@": str(canary),
    }
    for name in names:
        data = (ATTACKS / name).read_bytes()
        for key, value in replacements.items():
            data = data.replace(key.encode(), value.encode())
        (subs / name.removesuffix(".bin")).write_bytes(data)


def _attack_names(slow: bool) -> list[str]:
    # ``x.py.bin``: a .py submission stored under another name so linters leave it alone.
    return sorted(p.name for p in ATTACKS.iterdir()
                  if p.name.removesuffix(".bin").endswith((".py", ".ipynb"))
                  and p.name.startswith("slow_") == slow)


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _our_processes(uids: set[int] | None = None) -> list[int]:
    """Processes still running under one of ``uids`` (default: any throwaway grading uid)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                for line in open(f"/proc/{entry}/status", "rb"):
                    if line.startswith(b"Uid:"):
                        uid = int(line.split()[1])
                        if (uid in uids) if uids is not None else uid >= UID_BASE:
                            found.append(int(entry))
                        break
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    subs, out, canary = root / "subs", root / "out", root / "canary.txt"
    server = _Server()
    try:
        _stage(_attack_names(slow=False), subs, out, server.port, canary)
        shutil.copy(HONEST, subs / "honest.ipynb")
        honest_hash = hashlib.sha256((subs / "honest.ipynb").read_bytes()).hexdigest()
        results = grade_folder(subs, "protonet", out, jobs=2, progress=False,
                               limits=Limits(timeout=60, call_timeout=10))
    finally:
        server.close()
    return {"subs": subs, "out": out, "canary": canary, "results": results,
            "received": server.received, "honest_hash": honest_hash}


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("slow_attacks")
    subs, out = root / "subs", root / "out"
    _stage(_attack_names(slow=True), subs, out, 9, root / "canary.txt")
    results = grade_folder(subs, "protonet", out, jobs=2, progress=False,
                           limits=Limits(timeout=5, memory_mb=1024, call_timeout=2))
    # Only this run's throwaway uids: other test runs may be grading on the machine now.
    uids = {r["protections"].get("uid") for r in results} - {None}
    left_over = _our_processes(uids)
    for _ in range(50):  # killed processes may take a moment to be reaped
        if not left_over:
            break
        time.sleep(0.1)
        left_over = _our_processes(uids)
    return {"out": out, "results": results, "left_over": left_over, "uids": uids}


def test_suite_has_at_least_15_attacks():
    assert len(_attack_names(False)) + len(_attack_names(True)) >= 15


def test_every_submission_has_a_status_row(main_run, slow_run):
    for run, slow in ((main_run, False), (slow_run, True)):
        rows = _rows(run["out"])
        expected = {Path(n.removesuffix(".bin")).stem for n in _attack_names(slow)} | ({"honest"} if not slow else set())
        assert set(rows) == expected
        assert all(r["status"] in {"ok", "error", "timeout", "invalid"} for r in rows.values())


def test_honest_solution_gets_full_marks_next_to_attacks(main_run):
    honest = _rows(main_run["out"])["honest"]
    assert honest["status"] == "ok"
    assert float(honest["points"]) == float(honest["max_points"]) == 10


def test_no_attack_earns_any_credit(main_run, slow_run):
    for run in (main_run, slow_run):
        for student, row in _rows(run["out"]).items():
            if student != "honest":
                assert float(row["points"]) == 0, (student, row)


def test_statuses_name_what_happened(main_run, slow_run):
    rows = {**_rows(main_run["out"]), **_rows(slow_run["out"])}
    for name in ("malformed", "non_utf8", "non_utf8_source", "empty"):
        assert rows[name]["status"] == "invalid", name
    for name in ("os_exit", "segfault"):
        assert rows[name]["status"] == "error", name
    for name in ("slow_infinite_loop", "slow_fork_bomb", "slow_sleep_in_function"):
        assert rows[name]["status"] == "timeout", name
    assert rows["slow_huge_output"]["status"] in ("error", "timeout")
    assert rows["slow_memory_bomb"]["status"] in ("error", "timeout")
    for name in ("always_equal", "patch_builtins", "forged_with_nonce", "forged_output"):
        assert rows[name]["status"] in ("ok", "error"), name


def test_no_one_else_was_harmed(main_run):
    subs, out = main_run["subs"], main_run["out"]
    assert hashlib.sha256((subs / "honest.ipynb").read_bytes()).hexdigest() == main_run["honest_hash"]
    assert not (subs / "zz_planted.py").exists()
    assert not main_run["canary"].exists()
    assert not Path("/etc/metalearn_pwned").exists()
    honest = json.loads((out / "students" / "honest.json").read_text())
    assert honest["points"] == 10 and honest["status"] == "ok"
    writer = json.loads((out / "students" / "write_files.json").read_text())
    assert writer["points"] == 0 and writer["student"] == "write_files"


def test_network_is_blocked(main_run):
    honest = json.loads((main_run["out"] / "students" / "honest.json").read_text())
    if not honest["protections"].get("network_namespace"):
        pytest.skip("no network namespace on this machine (recorded in the JSON)")
    assert main_run["received"] == []


def test_secret_files_are_hidden(main_run):
    honest = json.loads((main_run["out"] / "students" / "honest.json").read_text())
    if not honest["protections"].get("hidden_paths"):
        pytest.skip("no mount namespace on this machine (recorded in the JSON)")
    package = str(ASSIGNMENTS_DIR.parent.parent)
    # hidden itself, or under a covered private ancestor (a clone in a 0700 mktemp folder:
    # the folder is covered and only the interpreter's .venv is bound back)
    assert any(package == p or package.startswith(p + os.sep) for p in honest["protections"]["hidden_paths"])
    log = (main_run["out"] / "logs" / "read_hidden.log").read_text()
    assert "stole []" in log  # it could not open a single secret file


def test_protections_are_recorded(main_run):
    honest = json.loads((main_run["out"] / "students" / "honest.json").read_text())
    prot = honest["protections"]
    assert prot["limits"]["RLIMIT_NPROC"] and prot["limits"]["RLIMIT_CORE"] == 0
    if os.getuid() == 0:
        assert prot["unprivileged_uid"] is True
        assert prot["pid_namespace"] is True
        # Only system trees, the interpreter and the scratch folder are visible: another
        # world-readable copy of the course elsewhere on the disk is out of reach too.
        if prot.get("mount_namespace"):
            assert prot["minimal_root"] is True, prot.get("minimal_root_error")


def test_fork_bomb_is_contained(slow_run):
    if os.getuid() == 0:
        assert len(slow_run["uids"]) == len(slow_run["results"])  # one throwaway uid each
    assert slow_run["left_over"] == []
    assert _our_processes(slow_run["uids"]) == []


def test_feedback_shows_no_hidden_inputs_or_expected_values(main_run):
    assignment = load_assignment("protonet")
    secrets = set()

    def collect(value):
        if isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif isinstance(value, float) and abs(value) > 1e-3:
            secrets.update({repr(value), f"{value:.4f}", f"{value:.3g}", f"{value:.6g}"})

    for case in assignment.cases:
        if not case.visible:
            collect(case.args)
            collect(case.expected)
    secrets = {s for s in secrets if len(s) >= 5}
    assert secrets
    feedback_dir = main_run["out"] / "feedback"
    texts = [p.read_text() for p in feedback_dir.glob("*.md")]
    assert len(texts) == len(main_run["results"])
    for text in texts:
        assert not [s for s in secrets if s in text]
    for path in (main_run["out"] / "students").glob("*.json"):
        record = json.loads(path.read_text())
        for test in record["tests"]:
            if not test["visible"]:
                assert "message" not in test and test["name"] == "hidden"
