"""Run one submission in a throwaway, confined child process (the parent's side).

``run_submission(source, cases, limits)`` writes the submission alone into a fresh
scratch directory, starts ``python -I harness.py`` in a new session with an empty
environment, passes the configuration (the test *inputs*, never expected values) on an
unlinked temporary file, and collects:

- one protections record per run from a pipe the child closes before student code runs;
- result lines from an unlinked temporary file, kept only if they carry this run's
  random nonce; stdout/stderr go to separate files and are never parsed for results.

While the child runs, the parent samples the sandbox's processes (those in its PID
namespace, else those of its throwaway uid) a few times a second: their memory
(``RssAnon + RssShmem``) is summed and the whole sandbox is killed when the sum passes
``Limits.memory_mb`` (``RunOutput.memory_exceeded``); their CPU time and the time they
spent runnable but waiting for a CPU (``/proc/<pid>/schedstat``) are recorded, so the
grader can tell a submission that was slow from one that a neighbour starved.

On timeout the whole session is killed, then the jail's PID 1 (which takes its PID
namespace down with it), then any process still running under the run's throwaway uid.
See ``metalearn_lite/grading/README.md`` for the full security model.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .intake import remove_tree

__all__ = ["Limits", "RunOutput", "run_submission", "HARNESS_PATH", "address_space_mb", "library_address_space_mb"]

HARNESS_PATH = Path(__file__).with_name("harness.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MAX_RESULT_BYTES = 32 << 20
MAX_LOG_BYTES = 8 << 10
UID_BASE = 1_900_000_000  # throwaway uids, far above any real account


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: wall clock and CPU seconds; memory in MiB (the resident memory
    of the whole sandbox summed over its processes; each process's address space may be this
    much more than its libraries reserve, see :func:`address_space_mb`); file size (MiB); process count (RLIMIT_NPROC of the run's own throwaway
    uid, so a cap on the whole sandbox when graded as root); scratch and /tmp size (MiB,
    each a tmpfs that vanishes with the sandbox); per-call soft timeout (s)."""

    timeout: float = 120.0
    cpu_seconds: int | None = None  # default: the wall-clock timeout
    memory_mb: int = 2048
    file_size_mb: int = 16
    max_processes: int = 32
    scratch_mb: int = 64
    call_timeout: float = 30.0


def library_address_space_mb(python: str | None = None) -> int:
    """Virtual memory (MiB) an isolated interpreter maps just by importing torch and numpy.

    Measured once per interpreter in a fresh ``python -I``. It is mostly reserved, untouched
    address space: about 0.6 GiB with PyTorch's CPU build, about 3.1 GiB with the CUDA build
    that plain ``pip install torch`` brings on Linux. A submission's address-space limit is
    this plus ``Limits.memory_mb`` (see :func:`address_space_mb`), so the library's reservations
    never cost a student any memory, while the resident memory they can actually use stays
    capped at ``memory_mb`` by the parent's watchdog."""
    return _measure_library_mappings(python or sys.executable)


@functools.lru_cache(maxsize=None)
def _measure_library_mappings(python: str) -> int:
    probe = ("import numpy, torch\n"
             "print(max(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmPeak')))")
    try:
        done = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
        kib = int(done.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"could not measure how much address space {python} needs to import torch "
                           f"and numpy (expected it to print its VmPeak in KiB): {error}") from error
    return -(-kib // 1024)


def address_space_mb(limits: Limits) -> int:
    """RLIMIT_AS for each process of a submission: ``limits.memory_mb`` on top of what the
    interpreter's libraries reserve (:func:`library_address_space_mb`)."""
    return limits.memory_mb + library_address_space_mb()


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
    memory_exceeded: bool = False
    peak_memory_mb: float = 0.0  # largest sampled sum over the sandbox's processes
    cpu_seconds: float = 0.0  # CPU time of the sandbox's sampled processes
    wait_seconds: float = 0.0  # time they were runnable but waiting for a CPU


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


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _real_uid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _autogroup(pid: int) -> tuple[str, str] | None:
    """``(group name, nice)`` from ``/proc/<pid>/autogroup`` ("/autogroup-12 nice 0")."""
    try:
        with open(f"/proc/{pid}/autogroup") as handle:
            fields = handle.read().split()
        return fields[0], fields[-1]
    except (OSError, IndexError):
        return None


def _demote(pid: int, main_group: str | None) -> None:
    """Lowest CPU priority for ``pid``, and for its scheduler autogroup when that is not
    the main process's (not a cgroup, not a sysctl: a per-process setting, as ``nice`` is)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) < 19:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
    except OSError:
        pass
    group = _autogroup(pid)
    if group is None or group[0] == main_group or group[1] == "19":
        return
    try:
        with open(f"/proc/{pid}/autogroup", "w") as handle:
            handle.write("19")
    except OSError:
        pass


class _Watch:
    """Samples the sandbox's processes: summed memory, per-process CPU and run-queue wait."""

    def __init__(self, uid: int | None):
        self.uid = uid
        self.pidns: str | None = None
        self.own_ns = _pid_namespace(os.getpid())
        self.times: dict[int, tuple[float, float]] = {}
        self.peak = 0

    def members(self) -> list[int]:
        out = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return out
        for entry in entries:
            if not entry.isdigit():
                continue
            if self.pidns is not None and self.pidns != self.own_ns:
                if _pid_namespace(int(entry)) == self.pidns:
                    out.append(int(entry))
            elif self.uid is not None and _real_uid(entry) == self.uid:
                out.append(int(entry))
        return out

    def sample(self, main_pid: int | None = None) -> int:
        """Bytes of resident anonymous + shared-memory pages summed over the sandbox.

        Every process but ``main_pid`` (the student's first process) is also set to the
        lowest priority, its scheduler autogroup too: without that a submission that
        starts 30 busy processes, each in its own session (a new autogroup, weighted like
        a whole program), takes 30 shares of the CPU from the neighbour graded beside it.
        A process cannot raise its own priority back (that needs CAP_SYS_NICE).
        """
        total = 0
        main_group = None
        if main_pid is not None:
            group = _autogroup(main_pid)
            main_group = group[0] if group else None
        for pid in self.members():
            if pid != main_pid and main_pid is not None:
                _demote(pid, main_group)
            try:
                with open(f"/proc/{pid}/status", "rb") as handle:
                    for line in handle:
                        if line.startswith((b"RssAnon:", b"RssShmem:")):
                            total += int(line.split()[1]) << 10
                with open(f"/proc/{pid}/schedstat", "rb") as handle:
                    fields = handle.read().split()
                cpu, wait = int(fields[0]) / 1e9, int(fields[1]) / 1e9
                old = self.times.get(pid, (0.0, 0.0))
                self.times[pid] = (max(old[0], cpu), max(old[1], wait))
            except (OSError, ValueError, IndexError):
                continue
        self.peak = max(self.peak, total)
        return total


def _tail(handle, limit: int = MAX_LOG_BYTES) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", "replace")


def _drain(fd: int, raw: bytes) -> tuple[bytes, bool]:
    """Read what is available on a non-blocking pipe: (all bytes so far, still open)."""
    try:
        while len(raw) < 65536:
            chunk = os.read(fd, 65536)
            if not chunk:
                return raw, False
            raw += chunk
    except BlockingIOError:
        return raw, True
    return raw, False  # more than the trusted stages ever write: stop reading


def _protections(raw: bytes) -> tuple[dict, int | None]:
    protections, jail_pid = {}, None
    for line in raw.split(b"\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "jail_pid" in obj:
            try:
                jail_pid = int(obj["jail_pid"])
            except (TypeError, ValueError):
                continue
            protections["limits"] = obj.get("limits")
        elif isinstance(obj, dict) and "protections" in obj and isinstance(obj["protections"], dict):
            protections.update(obj["protections"])
    return protections, jail_pid


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
            "memory_mb": limits.memory_mb, "address_space_mb": address_space_mb(limits),
            "file_size_mb": limits.file_size_mb,
            "max_processes": limits.max_processes, "call_timeout": limits.call_timeout,
            "scratch_mb": limits.scratch_mb,
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
        timed_out = memory_exceeded = False
        os.set_blocking(read_fd, False)
        proto_raw, proto_open = b"", True
        protections, jail_pid = {}, None
        watch = _Watch(uid)
        memory_cap = limits.memory_mb << 20
        deadline = start + limits.timeout
        while True:
            try:
                proc.wait(timeout=min(0.2, max(0.01, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pass
            if proto_open:  # the trusted stages' lines, until they close the pipe
                proto_raw, proto_open = _drain(read_fd, proto_raw)
                protections, jail_pid = _protections(proto_raw)
                if jail_pid and watch.pidns is None:
                    watch.pidns = _pid_namespace(jail_pid)
            if watch.sample(jail_pid) > memory_cap:
                memory_exceeded = True
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
        seconds = time.monotonic() - start
        # Take down everything the run started, whatever happened.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proto_open:
            proto_raw, _ = _drain(read_fd, proto_raw)
        os.close(read_fd)
        protections, jail_pid = _protections(proto_raw)
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
                        result_overflow=overflow, memory_exceeded=memory_exceeded,
                        peak_memory_mb=round(watch.peak / 2**20, 1),
                        cpu_seconds=round(sum(c for c, _ in watch.times.values()), 3),
                        wait_seconds=round(sum(w for _, w in watch.times.values()), 3))
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
        for folder in (scratch, private):  # any depth, unwritable entries included
            try:
                remove_tree(folder)
            except OSError as exc:
                print(f"warning: could not remove {folder}: {exc}", file=sys.stderr)
