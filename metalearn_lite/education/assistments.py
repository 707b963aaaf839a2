"""Real student logs in the ASSISTments skill-builder CSV format.

One row per attempt, with (common variants accepted, case-insensitive):

- student: ``user_id`` (or ``student_id``, ``user``, ``Anon Student Id``)
- item: ``problem_id`` (or ``item_id``, ``problem``, ``question_id``)
- correctness: ``correct`` (0/1; or ``is_correct``, ``Correct First Attempt``)
- skill (optional): ``skill_id`` / ``skill_name`` / ``skill`` / ``KC(Default)``
- order (optional): ``order_id`` (or ``order``, ``timestamp``, ``start_time``); file order if absent

Rows whose correctness is empty are skipped (the 2009 release has such rows). The result
keeps each student's attempts in order (a knowledge-tracing sequence) and builds a
[students, items] correctness matrix from first attempts (NaN where never attempted).
Read with the ``csv`` module: no pandas needed.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["COLUMN_ALIASES", "AssistmentsColumnError", "StudentLogs", "load_assistments"]

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "student_id", "user", "anon student id"),
    "problem": ("problem_id", "item_id", "problem", "question_id"),
    "correct": ("correct", "is_correct", "correct first attempt"),
    "skill": ("skill_id", "skill_name", "skill", "kc(default)"),
    "order": ("order_id", "order", "timestamp", "start_time"),
}
_REQUIRED = ("user", "problem", "correct")


class AssistmentsColumnError(ValueError):
    """A required column is missing; the message lists what was expected and what was found."""


@dataclass(frozen=True)
class StudentLogs:
    """Attempts grouped by student.

    Attributes:
        students: tuple of student ids (as in the file), length S.
        problems: tuple of problem ids, length I (index = column of ``response_matrix``).
        skills: tuple of skill ids/names ("" when the file has none), length num_skills.
        sequences: list of S dicts with tensors ``problem`` [T_s] long, ``skill`` [T_s] long
            (-1 if unknown) and ``correct`` [T_s] float 0/1, in attempt order.
    """

    students: tuple[str, ...]
    problems: tuple[str, ...]
    skills: tuple[str, ...]
    sequences: list[dict[str, torch.Tensor]]

    def response_matrix(self) -> torch.Tensor:
        """[S, I] float: first-attempt correctness per student and problem, NaN if never tried."""
        out = torch.full((len(self.students), len(self.problems)), float("nan"))
        for s, seq in enumerate(self.sequences):
            seen: set[int] = set()
            for p, c in zip(seq["problem"].tolist(), seq["correct"].tolist()):
                if p not in seen:
                    out[s, p] = c
                    seen.add(p)
        return out


def _find_columns(header: list[str]) -> dict[str, str | None]:
    lowered = {h.strip().lower(): h for h in header}
    found: dict[str, str | None] = {}
    for role, aliases in COLUMN_ALIASES.items():
        found[role] = next((lowered[a] for a in aliases if a in lowered), None)
    missing = [role for role in _REQUIRED if found[role] is None]
    if missing:
        expected = "; ".join(f"{role}: one of {list(COLUMN_ALIASES[role])}" for role in missing)
        raise AssistmentsColumnError(
            f"ASSISTments CSV is missing required column(s) {missing} (expected {expected}); "
            f"found columns {header}"
        )
    return found


def load_assistments(path: str | os.PathLike, *, encoding: str = "utf-8-sig", min_attempts: int = 1) -> StudentLogs:
    """Read an ASSISTments-style CSV of attempts.

    Args:
        path: the CSV file.
        encoding: the 2009 release is latin-1; most others are UTF-8.
        min_attempts: drop students with fewer attempts.

    Returns:
        StudentLogs (students and problems in order of first appearance).

    Raises:
        AssistmentsColumnError: a required column is missing (lists expected and found).
        ValueError: a correctness value is not 0/1 (names the row).
    """
    path = Path(path)
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise AssistmentsColumnError(f"{path} is empty: expected a header with columns "
                                         f"{[COLUMN_ALIASES[r][0] for r in _REQUIRED]}") from None
        cols = _find_columns(header)
        index = {role: (header.index(name) if name is not None else None) for role, name in cols.items()}
        rows: dict[str, list[tuple[float, int, str, str, float]]] = {}
        problems: dict[str, int] = {}
        skills: dict[str, int] = {}
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            raw = row[index["correct"]].strip()
            if raw == "":
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{path}:{line_no}: column {cols['correct']!r} must be 0 or 1, got {raw!r}") from None
            if value not in (0.0, 1.0):
                raise ValueError(f"{path}:{line_no}: column {cols['correct']!r} must be 0 or 1, got {raw!r}")
            user = row[index["user"]].strip()
            problem = row[index["problem"]].strip()
            skill = row[index["skill"]].strip() if index["skill"] is not None else ""
            if index["order"] is not None:
                order_raw = row[index["order"]].strip()
                try:
                    order = float(order_raw)
                except ValueError:
                    order = float(line_no)  # non-numeric timestamps: keep file order
            else:
                order = float(line_no)
            problems.setdefault(problem, len(problems))
            if skill:
                skills.setdefault(skill, len(skills))
            rows.setdefault(user, []).append((order, line_no, problem, skill, value))
    students, sequences = [], []
    for user, attempts in rows.items():
        if len(attempts) < min_attempts:
            continue
        attempts.sort(key=lambda r: (r[0], r[1]))
        students.append(user)
        sequences.append({
            "problem": torch.tensor([problems[a[2]] for a in attempts], dtype=torch.long),
            "skill": torch.tensor([skills[a[3]] if a[3] else -1 for a in attempts], dtype=torch.long),
            "correct": torch.tensor([a[4] for a in attempts], dtype=torch.float32),
        })
    return StudentLogs(students=tuple(students), problems=tuple(problems), skills=tuple(skills), sequences=sequences)
