"""The grader against hostile submissions and a hostile submissions folder (tests/attacks/).

Every attack file (``tests/attacks/*.py|*.ipynb|*.bin``) and every awkward folder entry
(``tests/attacks/folder_entries.json``: links to devices, FIFOs, sockets, huge files,
folders, hidden files, Unicode and markup names) is staged in ONE submissions folder next
to an honest solution and graded in one run (``--jobs 2``, short timeouts). Checked for
each: no undeserved points, the honest neighbour gets full marks, every entry has a row in
grades.csv or a rejected entry with its reason, nothing outside the output folder changed,
nothing is left in the temp folder, no process or SysV IPC object outlives the run, the
grader is alive and a resuming run neither crashes nor hangs. Unit tests below prove each
promise of inert feedback (grading/README.md, "Security model") on its own.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from metalearn_lite.grading import grader as grader_module
from metalearn_lite.grading.assignment import PRIVATE_ENV, load_assignment
from metalearn_lite.grading.compare import compare
from metalearn_lite.grading.grader import _feedback, _score, grade_file, grade_folder
from metalearn_lite.grading.inert import log_text, markdown_text
from metalearn_lite.grading.intake import read_submission, remove_tree, scan_folder, shown_name
from metalearn_lite.grading.sandbox import UID_BASE, Limits

REPO = Path(__file__).resolve().parents[1]
ATTACKS = REPO / "tests" / "attacks"
HONEST = REPO / "solutions" / "hw_protonet.ipynb"
EXERCISE = REPO / "exercises" / "hw_protonet.ipynb"
LIMITS = Limits(timeout=10, memory_mb=1024, call_timeout=3)
FULL = 10.0
# Markup or terminal control that must never reach feedback / logs.
BAD_FEEDBACK = ("<img", "<b>", "<script", "onerror=", "](http", "](javascript", "\x1b", "Score: 10")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

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


def _private() -> Path:
    return Path(os.environ[PRIVATE_ENV])


def _attack_files() -> list[str]:
    # ``x.py.bin``: a .py submission stored under another name so linters leave it alone.
    return sorted(p.name for p in ATTACKS.iterdir() if p.name.removesuffix(".bin").endswith((".py", ".ipynb")))


def _folder_entries() -> list[dict]:
    return json.loads((ATTACKS / "folder_entries.json").read_text(encoding="utf-8"))["entries"]


def _honest_py() -> bytes:
    nb = json.loads(HONEST.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return "\n\n# %%\n".join(cells).encode()


def _stage(subs: Path, replacements: dict[str, str]) -> dict[str, dict]:
    """Write every attack into ``subs``; returns what each entry must become:
    ``{entry name: {"student": id, "points": p} | {"reason": text}}``."""
    subs.mkdir(parents=True)
    expect: dict[str, dict] = {}
    for name in _attack_files():
        data = (ATTACKS / name).read_bytes()
        for key, value in replacements.items():
            data = data.replace(key.encode(), value.encode())
        staged = name.removesuffix(".bin")
        (subs / staged).write_bytes(data)
        expect[staged] = {"student": staged.rpartition(".")[0], "points": 0.0}
    for entry in _folder_entries():
        name, make, path = entry["name"], entry["make"], subs / entry["name"]
        if make == "symlink":
            path.symlink_to(replacements.get(entry["target"], entry["target"]))
        elif make == "fifo":
            os.mkfifo(path)
        elif make == "socket":
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            sock.close()
        elif make == "device":
            if os.getuid() != 0:
                continue  # only root may create device nodes
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        elif make == "sparse":
            with open(path, "wb") as handle:
                handle.truncate(entry["size"])
        elif make == "folder":
            path.mkdir()
            (path / "erin.py").write_bytes(_honest_py())
        elif make == "deep_folder":
            deep = path
            for _ in range(entry["depth"]):
                deep = deep / "d"
            deep.mkdir(parents=True)
            (deep / "x.py").write_text("x = 1\n")
        else:
            data = {"honest": HONEST.read_bytes(), "honest_py": _honest_py(),
                    "exercise": EXERCISE.read_bytes()}[make]
            path.write_bytes(data)
        expect[name] = ({"reason": entry["reason"]} if "reason" in entry
                        else {"student": entry["student"], "points": float(entry["points"])})
    (subs / "honest.ipynb").write_bytes(HONEST.read_bytes())
    expect["honest.ipynb"] = {"student": "honest", "points": FULL}
    return expect


def _snapshot(*roots: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under ``roots`` (links not followed) with its type, size and content hash."""
    seen = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            if skip is not None and Path(folder) == skip:
                dirs[:] = []
                continue
            for name in dirs + files:
                path = os.path.join(folder, name)
                if skip is not None and path == str(skip):
                    continue
                st = os.lstat(path)
                digest = None
                if stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                seen[path] = (stat.S_IFMT(st.st_mode), st.st_size if digest else 0, digest)
    return seen


def _uid_processes(uids: set[int]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                for line in open(f"/proc/{entry}/status", "rb"):
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) in uids:
                            found.append(int(entry))
                        break
            except OSError:
                pass
    return found


def _sysv_keys(kind: str) -> set[int]:
    try:
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(line.split()[0]) for line in lines if line.split()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    subs, out, canary, tmp = root / "subs", root / "out", root / "canary.txt", root / "tmp"
    tmp.mkdir()
    server = _Server()
    replacements = {
        "@@OUT@@": str(out), "@@SUBS@@": str(subs), "@@PORT@@": str(server.port),
        "@@HIDDEN@@": str(_private() / "protonet" / "hidden_tests.py"),
        "@@SOLUTIONS@@": str(HONEST), "@@CANARY@@": str(canary),
    }
    expect = _stage(subs, replacements)
    before = _snapshot(root, _private(), skip=out)
    keys_before = {kind: _sysv_keys(kind) for kind in ("msg", "shm", "sem")}
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(tmp)  # the grader's scratch and private folders go here only
    start = time.monotonic()
    try:
        results = grade_folder(subs, "protonet", out, jobs=2, progress=False, limits=LIMITS)
    finally:
        tempfile.tempdir = saved_tempdir
        server.close()
    seconds = time.monotonic() - start
    uids = {r.get("protections", {}).get("uid") for r in results} - {None}
    left = _uid_processes(uids)
    for _ in range(50):  # killed processes may take a moment to be reaped
        if not left:
            break
        time.sleep(0.1)
        left = _uid_processes(uids)
    return {"root": root, "subs": subs, "out": out, "canary": canary, "tmp": tmp,
            "results": {r["student"]: r for r in results}, "expect": expect, "before": before,
            "received": server.received, "uids": uids, "left_over": left, "seconds": seconds,
            "keys_before": keys_before}


def _rows(out: Path, name: str = "grades.csv") -> list[dict]:
    with open(out / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_suite_has_at_least_45_attacks():
    assert len(_attack_files()) + len(_folder_entries()) >= 45


def test_every_entry_has_a_row_or_a_rejection_with_its_reason(run):
    rows = {r["student"]: r for r in _rows(run["out"])}
    rejected = {r["entry"]: r["reason"] for r in _rows(run["out"], "rejected.csv")}
    entries = set(os.listdir(run["subs"]))
    graded = {name for name, e in run["expect"].items() if "student" in e}
    want_rows = {run["expect"][name]["student"] for name in graded}
    assert set(rows) == want_rows  # one row per graded entry, under the expected id
    assert len(rows) + len(rejected) == len(entries)  # nothing silently left out
    for name, e in run["expect"].items():
        if "reason" in e and not (name == "null_device.py" and os.getuid() != 0):
            assert e["reason"] in rejected[shown_name(name)], (name, rejected)
    assert all(r["status"] in {"ok", "error", "timeout", "invalid"} for r in rows.values())
    # the file column is printable and never a spreadsheet formula
    for r in rows.values():
        assert not _CONTROL.search(r["file"]) and r["file"][:1] not in "=+-@"


def test_no_undeserved_points_and_honest_neighbour_full_marks(run):
    rows = {r["student"]: r for r in _rows(run["out"])}
    for name, e in run["expect"].items():
        if "student" in e:
            assert float(rows[e["student"]]["points"]) == e["points"], (name, rows[e["student"]])
    honest = run["results"]["honest"]
    assert honest["status"] == "ok" and honest["points"] == FULL


def test_statuses_name_what_happened(run):
    r = run["results"]
    for name in ("malformed", "non_utf8", "non_utf8_source", "empty"):
        assert r[name]["status"] == "invalid", name
    for name in ("os_exit", "segfault"):
        assert r[name]["status"] == "error", name
    for name in ("slow_infinite_loop", "slow_fork_bomb", "slow_sleep_in_function",
                 "slow_sleep_to_timeout", "hog_busy_sessions"):
        assert r[name]["status"] == "timeout", name
    assert r["slow_memory_across_forks"]["status"] == "error"
    assert "memory" in r["slow_memory_across_forks"]["reason"]
    assert r["slow_huge_output"]["status"] in ("error", "timeout")
    assert r["slow_memory_bomb"]["status"] in ("error", "timeout")
    # a sleeper used no CPU: its timeout is recorded at once, not graded again alone
    assert r["slow_sleep_to_timeout"]["graded_alone"] is False


def test_nothing_outside_the_output_folder_changed(run):
    after = _snapshot(run["root"], _private(), skip=run["out"])
    assert after == run["before"]
    assert not run["canary"].exists()
    assert not Path("/etc/metalearn_pwned").exists()


def test_nothing_left_in_the_temp_folder(run):
    assert os.listdir(run["tmp"]) == []


def test_no_process_or_ipc_object_outlives_the_run(run):
    if os.getuid() == 0:
        assert len(run["uids"]) == sum(r["status"] != "invalid" for r in run["results"].values())
    assert run["left_over"] == []
    for kind in ("msg", "shm", "sem"):
        assert _sysv_keys(kind) - run["keys_before"][kind] == set()
    log = (run["out"] / "logs" / "sysv_queue_reader.log").read_text()
    prot = run["results"]["sysv_queue_reader"]["protections"]
    if prot.get("ipc_namespace"):
        assert "sysv found []" in log


def test_grader_alive_and_resume_neither_crashes_nor_hangs(run, monkeypatch, tmp_path):
    os.kill(os.getpid(), 0)
    csv_before = (run["out"] / "grades.csv").read_bytes()
    calls = []
    monkeypatch.setattr(grader_module, "run_submission", lambda *a, **k: calls.append(a) or 1 / 0)
    monkeypatch.setattr(tempfile, "tempdir", str(run["tmp"]))
    start = time.monotonic()
    grade_folder(run["subs"], "protonet", run["out"], jobs=2, progress=False, limits=LIMITS)
    assert calls == [] and time.monotonic() - start < 30
    assert (run["out"] / "grades.csv").read_bytes() == csv_before
    assert os.listdir(run["tmp"]) == []


def test_network_is_blocked(run):
    if not run["results"]["honest"]["protections"].get("network_namespace"):
        pytest.skip("no network namespace on this machine (recorded in the JSON)")
    assert run["received"] == []


def test_secret_files_are_hidden(run):
    prot = run["results"]["honest"]["protections"]
    if not prot.get("hidden_paths"):
        pytest.skip("no mount namespace on this machine (recorded in the JSON)")
    log = (run["out"] / "logs" / "read_hidden.log").read_text()
    assert "stole []" in log  # it could not open a single secret file


def test_protections_are_recorded(run):
    prot = run["results"]["honest"]["protections"]
    assert prot["limits"]["RLIMIT_NPROC"] == LIMITS.max_processes and prot["limits"]["RLIMIT_CORE"] == 0
    if os.getuid() == 0:
        assert prot["unprivileged_uid"] is True and prot["pid_namespace"] is True
        assert prot["ipc_namespace"] is True
        if prot.get("mount_namespace"):
            assert prot["minimal_root"] is True, prot.get("minimal_root_error")
            assert prot["scratch_tmpfs_mb"] == LIMITS.scratch_mb


def test_disk_filler_was_capped(run):
    prot = run["results"]["disk_fill"]["protections"]
    if not prot.get("scratch_tmpfs_mb"):
        pytest.skip("no mount namespace: the scratch folder is on disk (recorded in the JSON)")
    log = (run["out"] / "logs" / "disk_fill.log").read_text()
    written = int(re.search(r"wrote MiB: (\d+)", log).group(1))
    assert written <= 2 * LIMITS.scratch_mb  # scratch + /tmp, each a capped tmpfs


def test_feedback_and_logs_are_inert(run):
    for path in (run["out"] / "feedback").glob("*.md"):
        text = path.read_text(encoding="utf-8")
        assert not [b for b in BAD_FEEDBACK if b in text], path.name
        assert "<" not in text and not _CONTROL.search(text), path.name
    for path in (run["out"] / "logs").glob("*.log"):
        text = path.read_text(encoding="utf-8")
        assert not _CONTROL.search(text), path.name
    forged = (run["out"] / "feedback" / "forged_kind_with_nonce.md").read_text()
    assert "an unknown value" in forged or "a malformed tensor" in forged or "another type" in forged
    assert len(forged) < 8000  # a fixed vocabulary, not the child's megabytes of text
    lying = (run["out"] / "feedback" / "lying_type_names.md").read_text()
    assert "an object of another type" in lying


def test_feedback_shows_no_hidden_inputs_or_expected_values(run):
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
    texts = [p.read_text() for p in (run["out"] / "feedback").glob("*.md")]
    assert len(texts) == len(run["results"])
    for text in texts:
        plain = text.replace("\\", "")
        assert not [s for s in secrets if s in plain]
    for path in (run["out"] / "students").glob("*.json"):
        for test in json.loads(path.read_text())["tests"]:
            if not test["visible"]:
                assert "message" not in test and test["name"] == "hidden"


# ------------------------------------------------------- each promise on its own
MARKUP = ['<img src=x onerror="alert(1)">', "![x](https://evil.example/x.png)",
          "\x1b[2J\x1b[31mScore: 10 / 10", "[a](javascript:alert(1))", "<script>x</script>"]


@pytest.mark.parametrize("text", MARKUP)
def test_comparison_messages_use_the_parents_words_only(text):
    exp = {"kind": "tensor", "dtype": "float64", "shape": [2], "data": [1.0, 2.0]}
    forged = [{"kind": text}, {"kind": "unsupported", "type": text}, {"kind": "list", "items": text},
              {"kind": "tensor", "dtype": text, "shape": [2], "data": [1.0, 2.0]},
              {"kind": "tensor", "dtype": "float64", "shape": [1] * 5000, "data": [1.0]},
              {"kind": "tensor", "dtype": "float64", "shape": [0, 10 ** 300], "data": []}]
    for got in forged:
        verdict = compare(exp, got)
        assert not verdict.passed
        assert text not in verdict.message and "<" not in verdict.message and "\x1b" not in verdict.message
        assert len(verdict.message) < 120
    listed = compare({"kind": "list", "items": [exp]}, {"kind": text, "items": [exp]})
    assert not listed.passed and text not in listed.message


def test_feedback_is_escaped_for_markdown_and_html():
    assignment = load_assignment("protonet")
    records = [{"case": c.id, "error": "raised", "exception": MARKUP[0]} for c in assignment.cases]
    records.append({"event": "loaded", "cell_errors": [[0, MARKUP[1]], [1, "Value_Error"]]})
    tests, questions, _, cell_errors = _score(assignment, records)
    result = {"student": "<b>x</b>![y](http://e/y.png)", "status": "invalid",
              "reason": MARKUP[0] + MARKUP[1], "points": 0.0, "max_points": 10.0,
              "questions": questions, "tests": tests, "cell_errors": cell_errors}
    for status in ("invalid", "ok"):
        text = _feedback(dict(result, status=status), assignment)
        assert not [b for b in BAD_FEEDBACK if b in text] and "<" not in text and "](" not in text
    assert markdown_text("a_b*c") == "a\\_b\\*c"
    assert markdown_text("<img>") == "&lt;img&gt;"
    assert markdown_text("x\ny\u202ez") == "x y?z"


def test_logs_lose_terminal_control_sequences():
    raw = ("\x1b[2J\x1b[H\x1b]0;title\x07\x1b]52;c;ZWNobw==\x07ok\rfake\x1b[1A\x1b[31mred\x1b[0m"
           "\u202eevil\x9b31m\x08\x00\ttab\nline")
    clean = log_text(raw)
    assert not _CONTROL.search(clean)
    assert "ok\nfake" in clean and "red" in clean and "\ttab\nline" in clean
    assert "title" not in clean and "ZWNobw" not in clean


# --------------------------------------------------- a parent that trusts nothing
def test_reading_never_follows_links_or_blocks(tmp_path):
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "stdin.py").symlink_to("/dev/stdin")
    os.mkfifo(tmp_path / "fifo.py")
    with open(tmp_path / "huge.py", "wb") as handle:
        handle.truncate((20 << 20) + 1)
    (tmp_path / "ok.py").write_text("x = 1\n")
    for name, reason in (("zero.py", "symbolic link"), ("stdin.py", "symbolic link"),
                         ("fifo.py", "FIFO"), ("huge.py", "more than")):
        with pytest.raises(OSError, match=reason):
            read_submission(tmp_path / name)
    assert read_submission(tmp_path / "ok.py") == b"x = 1\n"
    # a FIFO swapped in after the folder was scanned: graded as invalid, without hanging
    assignment = load_assignment("protonet")
    result, _ = grade_file("fifo", tmp_path / "fifo.py", assignment, LIMITS)
    assert result["status"] == "invalid" and "FIFO" in result["reason"]


def test_student_ids_unique_and_unambiguous(tmp_path):
    for name in ("jos\u00e9.py", "jose\u0301.py", "jos\u00e8.py", "Carol.IPYNB", "carol.py",
                 "a b.py", "a_b.py", ".dave.py", "x.txt"):
        (tmp_path / name).write_text("x = 1")
    (tmp_path / "erin_12345").mkdir()
    accepted, rejected = scan_folder(tmp_path)
    ids = {path.name: sid for sid, path in accepted}
    assert ids["jos\u00e8.py"] == "jos\u00e8" and ids["Carol.IPYNB"] == "Carol"
    assert len({sid.casefold() for sid in ids.values()}) == len(ids) == 5
    reasons = dict(rejected)
    assert "Unicode normalisation" in reasons["jos\u00e9.py"]
    assert "Unicode normalisation" in reasons["jose\\u0301.py"]
    assert "hidden" in reasons[".dave.py"] and "folder" in reasons["erin_12345"]
    assert "not a .ipynb or .py" in reasons["x.txt"]


def test_remove_tree_handles_deep_and_unwritable_trees(tmp_path):
    top = tmp_path / "scratch"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(1200):  # deeper than recursion (rmtree) and PATH_MAX allow: by descriptor
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0, dir_fd=fd))
            os.symlink("/etc", "link", dir_fd=fd)
            os.mkdir("dd", dir_fd=fd)
            new = os.open("dd", os.O_RDONLY, dir_fd=fd)
            os.chmod(fd, 0o500)  # unwritable once filled
            os.close(fd)
            fd = new
    finally:
        os.close(fd)
    remove_tree(top)
    assert not top.exists() and Path("/etc/passwd").exists()


# ------------------------------------------------------------- per-sandbox limits
def test_sandbox_demotes_every_process_but_the_first():
    """Fair time: a forked process, in its own session, ends at the lowest priority (nice
    19, its autogroup too), the student's first process keeps its own."""
    from metalearn_lite.grading.sandbox import run_submission

    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(2.5)\n"
            "    group = open('/proc/self/autogroup').read().split()[-1] if os.path.exists('/proc/self/autogroup') else '19'\n"
            "    print('child nice', os.nice(0), 'group', group, flush=True)\n"
            "    os._exit(0)\n"
            "os.wait()\n"
            "print('main nice', os.nice(0), flush=True)\n")
    run = run_submission(code, [], Limits(timeout=30))
    if not run.protections.get("pid_namespace") and os.getuid() != 0:
        pytest.skip("the sandbox's processes cannot be told apart here (no PID namespace, no uid)")
    assert "child nice 19 group 19" in run.stdout_tail
    assert "main nice 0" in run.stdout_tail


def test_starved_timeout_is_graded_again_alone(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a.py").write_text("x = 1\n")
    (subs / "b.py").write_text("x = 2\n")
    calls = []
    assignment = load_assignment("protonet")
    _, questions, _, _ = _score(assignment, [])

    def fake(sid, path, assignment_, limits, hide, cpu_share=1.0):
        first = sid not in calls
        calls.append(sid)
        starved = sid == "a" and first
        result = {"student": sid, "file": path.name, "status": "timeout" if starved else "ok",
                  "starved": starved, "points": 0.0, "max_points": 10.0, "questions": questions,
                  "tests": [], "complete": True, "reason": ""}
        return result, ""

    monkeypatch.setattr(grader_module, "grade_file", fake)
    rows = {r["student"]: r for r in grade_folder(subs, "protonet", tmp_path / "out", jobs=2,
                                                  progress=False, limits=LIMITS)}
    assert sorted(calls[:2]) == ["a", "b"] and calls[2:] == ["a"]  # again, after the others
    assert rows["a"]["status"] == "ok" and rows["a"]["graded_alone"] is True
    assert rows["b"]["graded_alone"] is False
    saved = json.loads((tmp_path / "out" / "students" / "a.json").read_text())
    assert saved["status"] == "ok"  # the starved timeout was never recorded
