"""Run one submission in a throwaway, confined child process (the parent's side).

``run_submission(source, cases, limits)`` writes the submission alone into a fresh
scratch directory, starts ``python -I harness.py`` in a new session with an empty
environment, passes the configuration (the test *inputs*, never expected values) on an
unlinked temporary file, and collects:

- one protections record per run from a pipe the child closes before student code runs;
- result lines from an unlinked temporary file, kept only if they carry this run's
  random nonce; stdout/stderr go to separate files and are never parsed for results.

On timeout the whole session is killed, then the jail's PID 1 (which takes its PID
namespace down with it), then any process still running under the run's throwaway uid.
See ``metalearn_lite/grading/README.md`` for the full security model.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "RunOutput", "run_submission", "HARNESS_PATH"]

HARNESS_PATH = Path(__file__).with_name("harness.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MAX_RESULT_BYTES = 32 << 20
MAX_LOG_BYTES = 8 << 10
UID_BASE = 1_900_000_000  # throwaway uids, far above any real account


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: wall clock and CPU seconds, memory (address space, MiB),
    file size (MiB), process count (per throwaway uid), per-call soft timeout (s)."""

    timeout: float = 120.0
    cpu_seconds: int | None = None  # default: the wall-clock timeout
    memory_mb: int = 2048
    file_size_mb: int = 16
    max_processes: int = 64
    call_timeout: float = 30.0


@dataclass
class RunOutput:
    """What came back from one child run (all untrusted except ``timed_out``/``returncode``)."""

    returncode: int | None
    timed_out: bool
    seconds: float
    records: list[dict] = field(default_factory=list)
    protections: dict = field(default_factory=dict)
    stdout_tail: str = ""
    stderr_tail: str = ""
    result_overflow: bool = False


def _readable_paths() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(key)
        if value:
            paths.add(value)
    return sorted(p for p in paths if p)


def _default_hide_paths(extra: list[str]) -> list[str]:
    hide = [str(PACKAGE_DIR)]
    repo = PACKAGE_DIR.parent
    for name in ("solutions", "tests"):
        if (repo / name).is_dir():
            hide.append(str(repo / name))
    hide.extend(str(Path(p).resolve()) for p in extra)
    home = os.path.expanduser("~")
    if os.path.isdir(home) and home != "/":
        hide.append(os.path.realpath(home))
    # Deduplicate, and never hide the interpreter's own tree.
    keep = [os.path.realpath(p) for p in _readable_paths()]
    out = []
    for path in dict.fromkeys(hide):
        if any(k == path or k.startswith(path + os.sep) for k in keep):
            continue
        out.append(path)
    return out


def _kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` (only throwaway uids)."""
    if uid < UID_BASE:
        return
    for _ in range(20):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", "rb") as handle:
                    for line in handle:
                        if line.startswith(b"Uid:"):
                            if int(line.split()[1]) == uid:
                                found = True
                                os.kill(int(entry), signal.SIGKILL)
                            break
            except (OSError, ValueError):
                continue
        if not found:
            return
        time.sleep(0.05)


def _tail(handle, limit: int = MAX_LOG_BYTES) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", "replace")


def _parse_lines(raw: bytes, nonce: str) -> list[dict]:
    """Strictly decode result lines: JSON objects with this run's nonce; no NaN/Infinity."""

    def reject_constant(name):
        raise ValueError(f"non-finite number {name}")

    records = []
    for line in raw.split(b"\n"):
        if not line.strip() or len(line) > (16 << 20):
            continue
        try:
            obj = json.loads(line.decode("utf-8"), parse_constant=reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if type(obj) is dict and obj.get("nonce") == nonce:
            records.append(obj)
    return records


def run_submission(source: str, cases: list[dict], limits: Limits = Limits(),
                   hide_paths: list[str] = (), namespaces: bool = True) -> RunOutput:
    """Run ``source`` (Python, cells split by ``# %%`` lines) against ``cases``.

    ``cases``: ``[{"id": str, "function": str, "args": [encoded value, ...]}]`` (inputs only).
    ``hide_paths``: extra directories the child must not see (submissions, output folder).
    """
    nonce = secrets.token_hex(16)
    as_root = os.getuid() == 0
    uid = UID_BASE + secrets.randbelow(90_000_000) if as_root else None
    private = Path(tempfile.mkdtemp(prefix="metalearn-grade-parent-"))
    scratch = Path(tempfile.mkdtemp(prefix="metalearn-grade-"))
    proc = None
    start = time.monotonic()
    try:
        os.chmod(private, 0o700)
        submission = scratch / "submission.py"
        submission.write_text(source, encoding="utf-8")
        if as_root:
            os.chown(scratch, uid, uid)
            os.chown(submission, uid, uid)
        os.chmod(scratch, 0o700)
        read_fd, write_fd = os.pipe()
        result_file = tempfile.TemporaryFile(dir=private)
        cfg_file = tempfile.TemporaryFile(dir=private)
        out_file = tempfile.TemporaryFile(dir=private)
        err_file = tempfile.TemporaryFile(dir=private)
        cfg = {
            "nonce": nonce, "cases": cases, "submission": str(submission),
            "scratch_dir": str(scratch), "staging_dir": str(private / "staging"),
            "tmp_root": tempfile.gettempdir(), "hide_paths": _default_hide_paths(list(hide_paths)),
            "readable_paths": _readable_paths(), "uid": uid, "gid": uid,
            "cpu_seconds": limits.cpu_seconds or int(limits.timeout) + 1,
            "memory_mb": limits.memory_mb, "file_size_mb": limits.file_size_mb,
            "max_processes": limits.max_processes, "call_timeout": limits.call_timeout,
            "proto_fd": write_fd, "result_fd": result_file.fileno(), "namespaces": namespaces,
        }
        cfg_file.write(json.dumps(cfg).encode())
        cfg_file.flush()
        cfg_file.seek(0)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": "/tmp/matplotlib"}
        proc = subprocess.Popen(
            [sys.executable, "-I", str(HARNESS_PATH), str(cfg_file.fileno())],
            stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file, env=env,
            cwd=str(scratch), start_new_session=True, close_fds=True,
            pass_fds=(cfg_file.fileno(), write_fd, result_file.fileno()),
        )
        os.close(write_fd)
        cfg_file.close()
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        seconds = time.monotonic() - start
        # Take down everything the run started, whatever happened.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        os.set_blocking(read_fd, False)
        proto_raw = b""
        try:
            while chunk := os.read(read_fd, 65536):
                proto_raw += chunk
        except BlockingIOError:
            pass
        os.close(read_fd)
        protections, jail_pid = {}, None
        for line in proto_raw.split(b"\n"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "jail_pid" in obj:
                jail_pid = int(obj["jail_pid"])
                protections["limits"] = obj.get("limits")
            elif isinstance(obj, dict) and "protections" in obj:
                protections.update(obj["protections"])
        if jail_pid:
            try:
                os.kill(jail_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if uid is not None:
            _kill_uid(uid)
        proc.wait()
        result_file.seek(0)
        raw = result_file.read(MAX_RESULT_BYTES + 1)
        overflow = len(raw) > MAX_RESULT_BYTES
        records = _parse_lines(raw[:MAX_RESULT_BYTES], nonce)
        out = RunOutput(returncode=proc.returncode, timed_out=timed_out, seconds=seconds,
                        records=records, protections=protections,
                        stdout_tail=_tail(out_file), stderr_tail=_tail(err_file),
                        result_overflow=overflow)
        for handle in (result_file, out_file, err_file):
            handle.close()
        return out
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
