"""Grades for a learning-management system: Canvas's gradebook import CSV, or a plain CSV.

``export_grades("grades/maml", "roster.csv", "canvas", "HW1 MAML", "canvas_hw1.csv")`` reads
``grades/maml/grades.csv`` (written by ``metalearn grade``) and a roster mapping each
submission id (the ``student`` column of grades.csv) to the LMS's ids::

    submission_id,lms_id,name,sis_user_id,sis_login_id,section
    alice,1001,Alice Liddell,S1001,alice,Section 1

(``submission_id`` and ``lms_id`` required; the others optional). Nobody is dropped: a
roster student without a grade gets an empty cell (Canvas leaves an empty cell unchanged)
and is listed in ``ExportReport.missing``; a graded submission that is not on the roster
stops the export with ``LmsExportError`` naming it (fix the roster, or rename the file),
as do duplicate ids in the roster. Canvas's format: ``Student, ID, SIS User ID, SIS Login
ID, Section`` then one column per assignment, and a ``Points Possible`` row.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_text

__all__ = ["RosterEntry", "ExportReport", "LmsExportError", "read_roster", "export_grades", "FORMATS"]

FORMATS = ("canvas", "plain")
_REQUIRED = ("submission_id", "lms_id")
_OPTIONAL = ("name", "sis_user_id", "sis_login_id", "section")


class LmsExportError(ValueError):
    """A roster or grades file that cannot be exported without losing or mixing up students."""


@dataclass(frozen=True)
class RosterEntry:
    submission_id: str
    lms_id: str
    name: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


@dataclass
class ExportReport:
    path: Path
    exported: int
    missing: list[str] = field(default_factory=list)  # on the roster, no grade (empty cell)


def _read_csv(path: Path, what: str) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LmsExportError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    return list(csv.DictReader(io.StringIO(text)))


def read_roster(path: str | Path) -> list[RosterEntry]:
    """Roster rows; ``LmsExportError`` for missing columns, empty or duplicate ids."""
    path = Path(path)
    rows = _read_csv(path, "roster")
    columns = set(rows[0]) if rows else set()
    missing = [c for c in _REQUIRED if c not in columns]
    if not rows or missing:
        raise LmsExportError(f"roster {path}: expected a CSV with a header row holding "
                             f"{', '.join(_REQUIRED)} (optional: {', '.join(_OPTIONAL)}); "
                             + (f"missing {', '.join(missing)}" if rows else "it has no rows"))
    entries, seen = [], {"submission_id": {}, "lms_id": {}}
    problems = []
    for line, row in enumerate(rows, start=2):
        values = {k: (row.get(k) or "").strip() for k in _REQUIRED + _OPTIONAL}
        for key in _REQUIRED:
            if not values[key]:
                problems.append(f"line {line}: empty {key}")
            elif values[key] in seen[key]:
                problems.append(f"line {line}: duplicate {key} {values[key]!r} "
                                f"(also on line {seen[key][values[key]]})")
            else:
                seen[key][values[key]] = line
        entries.append(RosterEntry(**values))
    if problems:
        raise LmsExportError(f"roster {path}: " + "; ".join(problems[:20])
                             + (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""))
    return entries


def export_grades(grades_dir: str | Path, roster: str | Path, fmt: str = "canvas",
                  column: str | None = None, out: str | Path | None = None) -> ExportReport:
    """Write ``out`` (default ``grades_dir/<fmt>.csv``) from ``grades_dir/grades.csv`` and the
    roster; see the module doc. ``column``: the assignment's column name in the LMS."""
    if fmt not in FORMATS:
        raise LmsExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    grades_dir = Path(grades_dir)
    entries = read_roster(roster)
    grades = _read_csv(grades_dir / "grades.csv", "grades file")
    if grades and not {"student", "points", "max_points", "status"} <= set(grades[0]):
        raise LmsExportError(f"{grades_dir / 'grades.csv'}: expected the columns student, status, "
                             "points, max_points (a grades.csv written by `metalearn grade`)")
    by_id = {g["student"]: g for g in grades}
    on_roster = {e.submission_id for e in entries}
    unknown = sorted(set(by_id) - on_roster)
    if unknown:
        raise LmsExportError(f"{len(unknown)} graded submission(s) not on the roster {roster}: "
                             f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''} "
                             "(add them to the roster with their LMS id; nothing was written)")
    max_points = grades[0]["max_points"] if grades else ""
    column = column or grades_dir.name
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    missing = []
    if fmt == "canvas":
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        writer.writerow(["Points Possible", "", "", "", "", max_points])
    else:
        writer.writerow(["submission_id", "lms_id", "name", "status", "points", "max_points"])
    for e in entries:
        g = by_id.get(e.submission_id)
        if g is None:
            missing.append(e.submission_id)
        points = g["points"] if g else ""
        if fmt == "canvas":
            writer.writerow([e.name or e.submission_id, e.lms_id, e.sis_user_id, e.sis_login_id,
                             e.section, points])
        else:
            writer.writerow([e.submission_id, e.lms_id, e.name, g["status"] if g else "missing",
                             points, max_points])
    path = Path(out) if out else grades_dir / f"{fmt}.csv"
    atomic_write_text(path, buffer.getvalue())
    return ExportReport(path, len(entries) - len(missing), missing)
