"""Grade a folder of submissions: one sandboxed child per student, in parallel.

``grade_folder(submissions, "maml", out)`` writes, all atomically:

- ``out/students/<id>.json``: status, points per question, per-test status, time,
  active protections (reused on re-run when complete and the submission and tests are
  unchanged, unless ``force``);
- ``out/feedback/<id>.md``: readable feedback (visible-test details; hidden tests only
  counted; no free text from the student's process, only exception type names);
- ``out/logs/<id>.log``: the tail of the child's stdout/stderr, for the instructor;
- ``out/grades.csv``: one row per submission file (student, status, points, max_points,
  one column per question);
- ``out/rejected.csv``: every other entry of the submissions folder (hidden files,
  folders, links, FIFOs, devices, other extensions, oversized files, names that clash
  after Unicode normalisation) with the reason (``intake.scan_folder``).

Fair time: a wall-clock timeout of a sandbox that a neighbour starved of CPU (see
``grade_file``) is not recorded; that submission is graded again alone after the others.

Statuses: ``ok`` (ran to the end), ``error`` (crashed, exited early or broke the result
channel: the tests it reached still count), ``timeout`` (killed at the wall-clock limit;
tests reached still count), ``invalid`` (not a readable notebook/.py, or empty).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from .assignment import Assignment, load_assignment, private_folder
from .compare import compare
from .intake import read_submission, remove_tree, scan_folder, shown_name
from .intake import safe_id as _intake_safe_id
from .inert import log_text, markdown_text
from .notebook_source import InvalidSubmission, submission_source
from .sandbox import Limits, run_submission

__all__ = ["grade_folder", "grade_file", "list_submissions", "GRADER_VERSION"]

GRADER_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,59}$")


def list_submissions(folder: str | Path) -> list[tuple[str, Path]]:
    """``[(student id, path)]`` for every regular ``*.py`` / ``*.ipynb`` file in ``folder``
    (not recursive); what is left out, and why, is ``intake.scan_folder(folder)[1]``.

    The id is the file stem (NFC, odd characters replaced by ``_``); a second file with
    the same id keeps its suffix (``alice.ipynb``) so no submission is dropped.
    """
    return scan_folder(folder)[0]


def _safe_id(name: str) -> str:
    """File name -> student id (``intake.safe_id``)."""
    return _intake_safe_id(name)


def _csv_cell(text: str) -> str:
    """Printable text that a spreadsheet will not read as a formula."""
    text = shown_name(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _fingerprint(assignment: Assignment) -> str:
    data = json.dumps([[c.id, c.args, c.expected] for c in assignment.cases], sort_keys=True)
    return hashlib.sha256(f"{GRADER_VERSION}:{data}".encode()).hexdigest()[:16]


def _exception_name(value) -> str:
    return value if isinstance(value, str) and _NAME_RE.match(value) else "an exception"


def _score(assignment: Assignment, records: list[dict]) -> tuple[list[dict], dict, bool, list]:
    """Per-test results, per-question points, whether the run finished, cell errors."""
    by_case, done, cell_errors = {}, False, []
    for rec in records:
        if rec.get("event") == "done":
            done = True
        elif rec.get("event") == "loaded" and type(rec.get("cell_errors")) is list:
            cell_errors = [(e[0], _exception_name(e[1])) for e in rec["cell_errors"][:50]
                           if type(e) is list and len(e) == 2 and type(e[0]) is int]
        elif type(rec.get("case")) is str and rec["case"] not in by_case:
            by_case[rec["case"]] = rec
    tests, questions = [], {}
    for q in assignment.questions:
        qcases = [c for c in assignment.cases if c.qid == q.qid]
        # Points come from hidden cases only: the visible ones are the students' self-checks,
        # public with their answers, so passing them alone (hard-coded) earns nothing.
        graded = [c for c in qcases if not c.visible]
        per_case = q.points / len(graded) if graded else 0.0
        got_points, passed = 0.0, 0
        for case in qcases:
            rec = by_case.get(case.id)
            entry = {"id": case.id, "question": q.qid, "visible": case.visible,
                     "name": case.name if case.visible else "hidden"}
            if rec is None:
                entry.update(status="missing", category="not_run")
                message = "not reached (the run ended before this test)"
            elif "output" in rec:
                verdict = compare(case.expected, rec["output"], q.rtol, q.atol)
                entry.update(status="passed" if verdict.passed else "failed",
                             category=verdict.category)
                message = verdict.message
            elif rec.get("error") == "missing function":
                entry.update(status="error", category="missing_function")
                message = f"no function named {q.function} in the submission"
            elif rec.get("error") == "call timed out":
                entry.update(status="error", category="call_timeout")
                message = "the call took too long"
            else:
                entry.update(status="error", category="raised")
                name = _exception_name(rec.get("exception"))
                message = ("not answered yet (raised NotImplementedError)"
                           if name == "NotImplementedError" else f"raised {name}")
            if case.visible:
                entry["message"] = message
            if type(rec) is dict and type(rec.get("seconds")) in (int, float):
                entry["seconds"] = round(float(rec["seconds"]), 4)
            if entry["status"] == "passed":
                got_points += 0.0 if case.visible else per_case
                passed += 1
            tests.append(entry)
        questions[q.qid] = {"points": round(got_points, 4), "max_points": float(q.points),
                            "passed": passed, "total": len(qcases)}
    return tests, questions, done, cell_errors


def _feedback(result: dict, assignment: Assignment) -> str:
    # Every interpolated value goes through markdown_text (escaped for Markdown and HTML),
    # even the parent's own messages: no text from the child reaches this file as markup.
    md = markdown_text
    lines = [f"# Feedback for {md(result['student'])}: homework '{md(assignment.name)}'", "",
             f"Status: **{md(result['status'])}**. Score: **{result['points']:g} / "
             f"{result['max_points']:g}** points.", ""]
    if result["status"] == "invalid":
        lines += [f"The file could not be graded: {md(result['reason'])}.", ""]
        return "\n".join(lines)
    if result["status"] == "timeout":
        lines += ["Your code did not finish in the time allowed; tests it did not reach "
                  "count as failed.", ""]
    elif result["status"] == "error":
        lines += ["Your code stopped before all tests ran (a crash, an exit or a resource "
                  "limit); tests it did not reach count as failed.", ""]
    for index, name in result.get("cell_errors", []):
        lines.append(f"- Code cell {int(index)} raised {md(name)} (the cells after it still ran).")
    if result.get("cell_errors"):
        lines.append("")
    for q in assignment.questions:
        qres = result["questions"][q.qid]
        lines += [f"## Question {md(q.qid)}: {md(q.title)} ({qres['points']:g} / {q.points:g} points)", ""]
        hidden_total = hidden_passed = 0
        for test in result["tests"]:
            if test["question"] != q.qid:
                continue
            if test["visible"]:
                mark = "passed" if test["status"] == "passed" else "FAILED"
                detail = "" if test["status"] == "passed" else f": {md(test['message'])}"
                lines.append(f"- visible test '{md(test['name'])}' {mark}{detail}")
            else:
                hidden_total += 1
                hidden_passed += test["status"] == "passed"
        lines.append(f"- hidden tests: {hidden_passed} of {hidden_total} passed")
        if qres["passed"] < qres["total"]:
            lines.append(f"- hint: {md(q.hint, limit=2000)}")
        lines.append("")
    return "\n".join(lines)


def grade_file(student: str, path: Path, assignment: Assignment, limits: Limits,
               hide_paths: list[str] = (), cpu_share: float = 1.0) -> tuple[dict, str]:
    """Grade one submission; returns (result record, log text). Never raises for bad input.

    ``cpu_share``: the fraction of a core this run could expect (cores / parallel runs, at
    most 1). A timeout is marked ``starved`` when the sandbox spent over a quarter of the
    time waiting for a CPU yet used less than half its share: a neighbour (or the machine)
    took the CPU, so ``grade_folder`` grades it again alone before recording it.
    """
    start = time.monotonic()
    result = {"student": student, "file": path.name, "sha256": "",
              "assignment": assignment.name, "fingerprint": _fingerprint(assignment),
              "grader_version": GRADER_VERSION, "max_points": assignment.max_points}
    try:
        # Read once, without following links, only a regular file, at most the size cap;
        # the source is taken from a private copy of exactly the bytes hashed.
        data = read_submission(path)
        result["sha256"] = hashlib.sha256(data).hexdigest()
        source = _source_of(data, path.name.rpartition(".")[2].lower())
    except (InvalidSubmission, OSError) as exc:
        tests, questions, _, _ = _score(assignment, [])
        result.update(status="invalid", reason=str(exc), points=0.0, questions=questions,
                      tests=tests, seconds=round(time.monotonic() - start, 3),
                      protections={}, cell_errors=[], complete=True)
        return result, ""
    run = run_submission(source, assignment.child_cases(), limits, hide_paths=hide_paths)
    tests, questions, done, cell_errors = _score(assignment, run.records)
    starved = (run.timed_out and run.wait_seconds > 0.25 * limits.timeout
               and run.cpu_seconds < 0.5 * limits.timeout * cpu_share)
    if run.timed_out:
        status, reason = "timeout", f"killed after {limits.timeout:g} s"
    elif run.memory_exceeded:
        status, reason = "error", f"used more than {limits.memory_mb} MiB of memory in all"
    elif run.returncode != 0 or not done or run.result_overflow:
        status = "error"
        reason = (f"child exited with code {run.returncode}" if run.returncode != 0
                  else "result channel overflowed" if run.result_overflow
                  else "the run did not report completion")
    else:
        status, reason = "ok", ""
    result.update(status=status, reason=reason,
                  points=round(sum(q["points"] for q in questions.values()), 4),
                  questions=questions, tests=tests, cell_errors=cell_errors,
                  seconds=round(time.monotonic() - start, 3), returncode=run.returncode,
                  protections=run.protections, complete=True, starved=starved,
                  usage={"cpu_seconds": run.cpu_seconds, "cpu_wait_seconds": run.wait_seconds,
                         "peak_memory_mb": run.peak_memory_mb})
    log = (f"returncode: {run.returncode}\ntimed_out: {run.timed_out}\n"
           f"--- stdout (tail) ---\n{log_text(run.stdout_tail)}\n"
           f"--- stderr (tail) ---\n{log_text(run.stderr_tail)}\n")
    return result, log


def _source_of(data: bytes, extension: str) -> str:
    """``submission_source`` on a private regular-file copy of ``data`` (``.py``/``.ipynb``)."""
    private = tempfile.mkdtemp(prefix="metalearn-grade-read-")
    try:
        copy = Path(private) / f"submission.{extension}"
        copy.write_bytes(data)
        return submission_source(copy)
    finally:
        remove_tree(private)


def _reusable(path: Path, sub: Path, assignment: Assignment) -> dict | None:
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        digest = hashlib.sha256(read_submission(sub)).hexdigest()
    except (OSError, ValueError):
        return None
    if (isinstance(old, dict) and old.get("complete") is True and old.get("sha256") == digest
            and old.get("fingerprint") == _fingerprint(assignment)
            and old.get("grader_version") == GRADER_VERSION):
        return old
    return None


def _csv_text(rows: list[dict], assignment: Assignment) -> str:
    qids = [q.qid for q in assignment.questions]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "status", "points", "max_points"] + [f"q{qid}" for qid in qids]
                    + ["file"])
    for r in sorted(rows, key=lambda r: r["student"]):
        writer.writerow([r["student"], r["status"], f"{r['points']:g}", f"{r['max_points']:g}"]
                        + [f"{r['questions'][qid]['points']:g}" for qid in qids] + [_csv_cell(r["file"])])
    return buffer.getvalue()


def grade_folder(submissions: str | Path, assignment_name: str, out: str | Path,
                 jobs: int | None = None, limits: Limits = Limits(), force: bool = False,
                 progress: bool = True, tests_dir: str | Path | None = None) -> list[dict]:
    """Grade every submission in ``submissions``; returns the result records (see module doc).

    ``jobs``: children run at once (default: cores). ``tests_dir``: the instructor's private
    assignment folder (default ``$METALEARN_ASSIGNMENTS``; written by ``metalearn homework
    private``; layout in ``assignment.py``).
    """
    private = private_folder(tests_dir)
    assignment = load_assignment(assignment_name, private)
    out = Path(out)
    subs, rejected = scan_folder(submissions)
    for folder in ("students", "feedback", "logs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    hide = [str(Path(submissions).resolve()), str(out.resolve())]
    hide.append(str(private.resolve()))  # reference code and hidden tests
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: dict[str, dict] = {}
    todo = []
    for sid, path in subs:
        old = None if force else _reusable(out / "students" / f"{sid}.json", path, assignment)
        if old is not None:
            results[sid] = old
        else:
            todo.append((sid, path))

    cpu_share = min(1.0, (os.cpu_count() or 1) / jobs)
    retry: list[tuple[str, Path]] = []

    def work(sid: str, path: Path, alone: bool = False) -> dict:
        try:
            result, log = grade_file(sid, path, assignment, limits, hide,
                                     cpu_share=1.0 if alone else cpu_share)
            if result.get("starved") and not alone and jobs > 1:
                retry.append((sid, path))  # graded again alone below, before recording
                return result
            result["graded_alone"] = alone
        except Exception as exc:  # noqa: BLE001 - a grader fault must not stop the others
            previous = out / "students" / f"{sid}.json"
            if previous.is_file():
                try:
                    return json.loads(previous.read_text(encoding="utf-8"))
                except ValueError:
                    pass
            tests, questions, _, _ = _score(assignment, [])
            return {"student": sid, "file": path.name, "status": "error",
                    "reason": f"grader error: {type(exc).__name__}", "points": 0.0,
                    "max_points": assignment.max_points, "questions": questions,
                    "tests": tests, "complete": False}
        atomic_write_text(out / "logs" / f"{sid}.log", log)
        atomic_write_text(out / "feedback" / f"{sid}.md", _feedback(result, assignment))
        atomic_write_text(out / "students" / f"{sid}.json",
                          json.dumps(result, indent=1, sort_keys=True) + "\n")
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(work, sid, path) for sid, path in todo]
        bar = tqdm(total=len(subs), initial=len(subs) - len(todo), desc=f"grading {assignment_name}",
                   unit="submission", disable=not progress)
        try:
            for future in as_completed(futures):
                r = future.result()
                results[r["student"]] = r
                bar.update(0 if any(sid == r["student"] for sid, _ in retry) else 1)
            # Timeouts of sandboxes that a neighbour starved of CPU: again, one at a time.
            for sid, path in list(retry):
                results[sid] = work(sid, path, alone=True)
                bar.update(1)
        except BaseException:
            # Interrupted: start nothing new; the runs under way finish and save their
            # grades atomically, so the next run resumes where this one stopped.
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    rows = [results[sid] for sid, _ in subs]
    atomic_write_text(out / "grades.csv", _csv_text(rows, assignment))
    atomic_write_text(out / "rejected.csv", _rejected_csv(rejected))
    return rows


def _rejected_csv(rejected: list[tuple[str, str]]) -> str:
    """``entry,reason``: every entry of the submissions folder that has no grade, and why."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["entry", "reason"])
    for name, reason in rejected:  # names already printable (intake.shown_name)
        writer.writerow(["'" + name if name[:1] in ("=", "+", "-", "@") else name, reason])
    return buffer.getvalue()
