"""grades.csv -> Canvas's gradebook import CSV (and a plain one) through a roster: nobody
dropped, bad rosters and unknown submissions stop the export with a clear error."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from metalearn_lite.cli import main
from metalearn_lite.grading.lms import LmsExportError, export_grades, read_roster

GRADES = """student,status,points,max_points,q3.1,q3.2,q3.3,q3.4,file
alice,ok,10,10,2,3,3,2,alice.ipynb
bob,timeout,3.5,10,2,1.5,0,0,bob.ipynb
carol,invalid,0,10,0,0,0,0,carol.py
"""
ROSTER = """submission_id,lms_id,name,sis_user_id,sis_login_id,section
alice,1001,"Liddell, Alice",S1,alice,Sec 1
bob,1002,Bob Ross,S2,bob,Sec 2
carol,1003,Carol Ann,S3,carol,Sec 1
dave,1004,Dave Null,S4,dave,Sec 2
"""


def _setup(tmp_path: Path, grades: str = GRADES, roster: str = ROSTER) -> tuple[Path, Path]:
    out = tmp_path / "hw_np"
    out.mkdir()
    (out / "grades.csv").write_text(grades)
    (tmp_path / "roster.csv").write_text(roster)
    return out, tmp_path / "roster.csv"


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_canvas_gradebook_keeps_every_roster_student(tmp_path, capsys):
    grades, roster = _setup(tmp_path)
    assert main(["homework", "export", str(grades), "--roster", str(roster), "--column", "HW3 Neural processes"]) == 0
    assert "dave" in capsys.readouterr().out  # listed as missing
    rows = _rows(grades / "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW3 Neural processes"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10"]
    assert rows[2:] == [["Liddell, Alice", "1001", "S1", "alice", "Sec 1", "10"],
                        ["Bob Ross", "1002", "S2", "bob", "Sec 2", "3.5"],
                        ["Carol Ann", "1003", "S3", "carol", "Sec 1", "0"],
                        ["Dave Null", "1004", "S4", "dave", "Sec 2", ""]]  # no submission: left empty


def test_plain_export_and_report(tmp_path):
    grades, roster = _setup(tmp_path)
    report = export_grades(grades, roster, "plain", out=tmp_path / "plain.csv")
    assert report.exported == 3 and report.missing == ["dave"]
    rows = _rows(tmp_path / "plain.csv")
    assert rows[0] == ["submission_id", "lms_id", "name", "status", "points", "max_points"]
    assert rows[2] == ["bob", "1002", "Bob Ross", "timeout", "3.5", "10"]
    assert rows[4] == ["dave", "1004", "Dave Null", "missing", "", "10"]


@pytest.mark.parametrize("roster, message", [
    (ROSTER + "alice,1005,Other Alice,,,\n", "line 6: duplicate submission_id 'alice' (also on line 2)"),
    (ROSTER + "erin,1001,Erin,,,\n", "line 6: duplicate lms_id '1001' (also on line 2)"),
    (ROSTER + ",1006,No Id,,,\n", "line 6: empty submission_id"),
    ("student,canvas_id\nalice,1001\n", "missing submission_id, lms_id"),
    ("", "no rows"),
])
def test_bad_rosters_name_the_problem(tmp_path, capsys, roster, message):
    grades, path = _setup(tmp_path, roster=roster)
    with pytest.raises(LmsExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_roster(path)
    assert main(["homework", "export", str(grades), "--roster", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (grades / "canvas.csv").exists()


def test_a_submission_not_on_the_roster_stops_the_export(tmp_path, capsys):
    grades, roster = _setup(tmp_path, grades=GRADES + "mallory,ok,10,10,2,3,3,2,mallory.py\n")
    assert main(["homework", "export", str(grades), "--roster", str(roster)]) == 2
    err = capsys.readouterr().err
    assert "1 graded submission(s) not on the roster" in err and "mallory" in err
    assert not (grades / "canvas.csv").exists()
    assert main(["homework", "export", str(tmp_path / "nowhere"), "--roster", str(roster)]) == 2
    assert "cannot read the grades file" in capsys.readouterr().err
