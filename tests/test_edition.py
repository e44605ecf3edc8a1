"""The student edition: made from the solution, its grader fails every Block with
NotImplementedError and nothing else, no solution line survives in it, and the grader passes
correct code written differently from the solution's."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from grader import test_block_c

import student_edition
import vit

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
        for part in parts:
            for line in part.splitlines():
                if len(line.strip()) > 25:
                    assert line not in text, (name, line)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={report}"], cwd=out, capture_output=True, check=False,
                   env={"PYTHONPATH": str(out / "src"), "PATH": ""})
    cases = ET.parse(report).getroot().iter("testcase")
    seen = {}
    for case in cases:
        failure = case.find("failure")
        block = re.search(r"test_block_(\w)", case.get("classname"))
        if block is None:  # the given Phase 17 block's tests
            assert failure is None, case.get("name")
            continue
        # its own Block's stub, or an earlier Block's it builds on (D trains C's model)
        said = re.search(r"NotImplementedError: Block (\w)", failure.get("message", "")) \
            if failure is not None else None
        assert said and said[1] <= block[1].upper(), (case.get("name"), failure)
        seen[block[1]] = seen.get(block[1], 0) + 1
    assert set(seen) == {"b", "c", "d", "e"} and min(seen.values()) >= 2, seen


def patchify_by_loops(x, P):
    """Another correct patchify: patch by patch, pixel by pixel."""
    B, H, W, C = x.shape
    out = np.empty((B, (H // P) * (W // P), P * P * C), x.dtype)
    for i in range(H // P):
        for j in range(W // P):
            out[:, i * (W // P) + j] = x[:, i * P:(i + 1) * P, j * P:(j + 1) * P].reshape(B, -1)
    return out


def patchify_by_einsum(x, P):
    """Another: the spec's einsum, (B, h, p, w, q, c) -> (B, h, w, p, q, c)."""
    B, H, W, C = x.shape
    x = x.reshape(B, H // P, P, W // P, P, C)
    return np.einsum("bhpwqc->bhwpqc", x).reshape(B, -1, P * P * C)


def unpatchify_by_loops(patches, P, image_size, channels=3):
    n = image_size // P
    x = np.empty((len(patches), image_size, image_size, channels), patches.dtype)
    for k in range(n * n):
        i, j = divmod(k, n)
        x[:, i * P:(i + 1) * P, j * P:(j + 1) * P] = patches[:, k].reshape(-1, P, P, channels)
    return x


@pytest.mark.parametrize("patchify", [patchify_by_loops, patchify_by_einsum])
def test_the_grader_passes_correct_code_written_otherwise(monkeypatch, patchify):
    """Block C's grader with patchify written by loops or by einsum, unpatchify by loops, and
    a head that starts random instead of zero."""
    monkeypatch.setattr(vit, "patchify", patchify)
    monkeypatch.setattr(vit, "unpatchify", unpatchify_by_loops)
    init = vit.TinyViT.__init__

    def random_head(self, cfg, *args, **kwargs):
        init(self, cfg, *args, **kwargs)
        self.params["W_head"][...] = np.random.default_rng(1).normal(
            0, 0.02, self.params["W_head"].shape)

    monkeypatch.setattr(vit.TinyViT, "__init__", random_head)
    for name in dir(test_block_c):
        if name.startswith("test_"):
            test = getattr(test_block_c, name)
            if name == "test_forward_gives_one_logit_per_class":
                for n in (5, 300):
                    test(n)
            else:
                test()
