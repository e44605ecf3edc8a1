"""The student edition: made from the solution, its grader fails every Block with
NotImplementedError and nothing else, no solution line survives in it, and making it never
replaces what it did not write. (The grader itself is graded in test_grader_graded.py.)"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import student_edition

LAB = Path(__file__).parents[1]


def marked_parts():
    """{file: [the solution's lines of each marked part]}."""
    parts = {}
    for path in sorted(LAB.glob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"# BEGIN BLOCK (\w): .*\n((?:.*\n)*?)\s*# END BLOCK \1", text):
            parts.setdefault(path.name, []).append(m[2])
    return parts


def test_every_block_of_the_spec_is_marked_once_its_hints_fit_a_line():
    parts = marked_parts()
    blocks = {m for f in ("generate_icons.py", "vit.py", "train.py", "eval.py")
              for m in re.findall(r"# BEGIN BLOCK (\w):", (LAB / f).read_text())}
    assert blocks == set(student_edition.BLOCKS) and set(parts) == {
        "generate_icons.py", "vit.py", "train.py", "eval.py"}


@pytest.mark.slow
def test_the_edition_fails_every_block_with_not_implemented_and_nothing_else(tmp_path):
    out = student_edition.make(tmp_path / "edition")
    for name in ("STUDENT.md", "BLUEPRINT.md", "tests/grader/test_block_c.py"):
        assert (out / name).is_file(), name
    for gone in ("results", "sweep.py", "lessons.py", "compare_torch.py", "docs", "data",
                 "manifest.json", "loss.png", "tests/test_hostile.py"):
        assert not (out / gone).exists(), gone
    for name, parts in marked_parts().items():  # no solution line of a marked part survives
        text = (out / name).read_text()
        assert "BLOCK" not in text.replace("NotImplementedError(\"Block", "").replace(
            "NotImplementedError('Block", ""), name
        given = (LAB / name).read_text()
        for part in parts:
            given = given.replace(part, "")
        for part in parts:  # (a line the given code also has, `rng = ...(seed)`, gives nothing)
            for line in part.splitlines():
                if len(line.strip()) > 25 and line not in given:
                    assert line not in text, (name, line)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={report}"], cwd=out, capture_output=True, check=False,
                   env={"PYTHONPATH": str(out / "src"), "PATH": ""})
    cases = ET.parse(report).getroot().iter("testcase")
    seen = {}
    for case in cases:
        failure = next(iter(case.findall("failure") + case.findall("error")), None)
        block = re.search(r"test_block_(\w)|test_(acceptance)", case.get("classname"))
        if block and block[2]:  # the spec's acceptance needs every Block
            assert failure is not None and "not written yet" in \
                failure.get("message", ""), case.get("name")
            continue
        if block is None:  # the given Phase 17 block's tests
            assert failure is None, case.get("name")
            continue
        # its own Block's stub, or an earlier Block's it builds on (D trains C's model)
        said = re.search(r"NotImplementedError: Block (\w)", failure.get("message", "")) \
            if failure is not None else None
        assert said and said[1] <= block[1].upper(), (case.get("name"), failure)
        seen[block[1]] = seen.get(block[1], 0) + 1
    assert set(seen) == {"b", "c", "d", "e"} and min(seen.values()) >= 2, seen


# --- where the edition may write: never over what it did not write --------------------------


def tree(folder):
    """{path: sha256} of every file below `folder`, .git included: what must not change."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def refused_edition(cli, out, *needles, argv=()):
    code, err = cli(student_edition.main, "--out", out, *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An edition as this command writes it, made once: copy it before changing it."""
    return student_edition.make(tmp_path_factory.mktemp("made") / "edition", log=lambda _: None)


@pytest.fixture
def course(made, tmp_path):
    """A course folder: the instructor's notes, its own git repository, and an edition."""
    shutil.copytree(made, tmp_path / "course")
    (tmp_path / "course" / "notes.md").write_text("grading notes, week 3\n")
    subprocess.run(["git", "init", "-q", str(tmp_path / "course")], check=True)
    return tmp_path / "course"


@pytest.mark.slow
def test_a_course_folder_holding_the_lab_is_refused_and_kept(tmp_path):
    """The reported case: a course folder with its own STUDENT.md and the lab cloned inside,
    `student_edition.py --out ..` run from the lab: refused, not a byte of the course lost."""
    course = tmp_path / "course"
    course.mkdir()
    (course / "STUDENT.md").write_text("the course's own\n")
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(LAB), str(course / "lab")],
                   check=True)
    tracked = subprocess.run(["git", "ls-files"], cwd=LAB, capture_output=True, text=True,
                             check=True).stdout.split()
    for path in tracked:  # the lab as it is now, uncommitted changes included
        shutil.copyfile(LAB / path, course / "lab" / path)
    before = tree(course)
    done = subprocess.run([sys.executable, "student_edition.py", "--out", ".."],
                          cwd=course / "lab", capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "holds the lab" in done.stderr and "Traceback" not in done.stderr
    assert tree(course) == before


@pytest.mark.parametrize("where", ["the lab", "inside", "around"])
def test_the_lab_inside_or_around_it_is_refused(cli, where):
    out = {"the lab": LAB, "inside": LAB / "runs" / "edition", "around": LAB.parent}[where]
    before = sorted(p.name for p in LAB.parent.iterdir())
    refused_edition(cli, out, "the lab")
    assert sorted(p.name for p in LAB.parent.iterdir()) == before
    assert not (LAB / "runs" / "edition").exists() and not (LAB / student_edition.RECORD).exists()


def test_a_folder_holding_other_files_is_refused(cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "STUDENT.md").write_text("not an edition of ours\n")
    before = tree(tmp_path)
    refused_edition(cli, tmp_path / "mine", "did not write", "STUDENT.md")
    assert tree(tmp_path) == before


def test_made_again_it_updates_its_own_files_and_nothing_else(course):
    """The instructor's notes and the folder's .git stay byte for byte; the edition's files are
    those of the new call (here Block E handed out solved)."""
    theirs = {p: h for p, h in tree(course).items() if p == "notes.md" or p.startswith(".git/")}
    student_edition.make(course, solved="E", log=lambda _: None)
    after = tree(course)
    assert {p: after[p] for p in theirs} == theirs
    assert "raise NotImplementedError('Block E" not in (course / "eval.py").read_text()
    assert "raise NotImplementedError('Block C" in (course / "vit.py").read_text()


def test_a_students_changed_block_stops_it_unless_replace(cli, course, capsys):
    (course / "vit.py").write_text((course / "vit.py").read_text() + "# my Block C\n")
    before = tree(course)
    refused_edition(cli, course, "vit.py", "--replace")
    assert tree(course) == before
    student_edition.make(course, replace=True)  # asked by name: named first, then replaced
    assert "replacing 1 file(s)" in capsys.readouterr().out
    assert "# my Block C" not in (course / "vit.py").read_text()
    assert (course / "notes.md").read_text() == "grading notes, week 3\n"


def test_a_file_it_did_not_write_in_its_way_stops_it(cli, course):
    """A file at a path the edition writes, not in its record (a student's own vit.py)."""
    record = json.loads((course / student_edition.RECORD).read_text())
    del record["files"]["train.py"]
    (course / student_edition.RECORD).write_text(json.dumps(record))
    (course / "train.py").write_text("# the student's own\n")
    before = tree(course)
    refused_edition(cli, course, "train.py")
    assert tree(course) == before


def test_its_own_files_no_longer_in_the_edition_are_removed_others_kept(course):
    record = json.loads((course / student_edition.RECORD).read_text())
    for name, text in (("old.py", "ours, unchanged\n"), ("old_changed.py", "ours\n")):
        (course / name).write_text(text)
        record["files"][name] = hashlib.sha256(text.encode()).hexdigest()
    (course / student_edition.RECORD).write_text(json.dumps(record))
    (course / "old_changed.py").write_text("ours, then the student's\n")
    with pytest.raises(student_edition.LabError, match="old_changed.py"):
        student_edition.make(course)
    assert (course / "old.py").exists()  # a refusal removes nothing either
    (course / "old_changed.py").unlink()
    student_edition.make(course)
    assert not (course / "old.py").exists() and (course / "notes.md").exists()


def test_a_git_repository_inside_an_edition_is_refused(cli, course):
    subprocess.run(["git", "init", "-q", str(course / "src" / "theirs")], check=True)
    before = tree(course)
    refused_edition(cli, course, "git repository", "theirs")
    assert tree(course) == before


def test_a_link_where_it_writes_is_refused(cli, course, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("not the edition's\n")
    (course / "vit.py").unlink()
    try:
        (course / "vit.py").symlink_to(outside)
    except OSError:  # Windows without the right to make links
        pytest.skip("this system makes no symbolic links")
    refused_edition(cli, course, "vit.py")
    assert outside.read_text() == "not the edition's\n"


@pytest.mark.slow
def test_the_edition_solved_passes_every_grader(tmp_path):
    """Handed out with every Block solved (--solved BCDE), the edition's graders pass: the
    stubs' seams join up without the solution's other files."""
    out = student_edition.make(tmp_path / "solved", solved="BCDE", log=lambda _: None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                           "not slow"], cwd=out, capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(out / "src"), "PATH": ""})
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:]
