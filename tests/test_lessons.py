"""lessons.py: the lessons end to end on a tiny budget, and the pieces that need no training."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import lessons
import sweep
from minimodel import recipes
from vit import ViTConfig, patchify

LAB = Path(__file__).parents[1]


def test_vit_base_is_the_same_config_scaled_up():
    found = lessons.scale()
    assert found["ViT-Base"]["parameters"] == 86_567_656  # ViT-B/16 with a 1000-class head
    assert found["this lab"]["parameters"] == 207_749 and found["ViT-Base"]["tokens"] == 197


def test_the_bug_is_a_different_patch_order_that_the_patch_test_catches():
    """The broken patchify keeps every shape and value, so nothing crashes; only the order of
    the pixels inside the patches changes, which test_vit's slice check sees."""
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3))
    good, bad = patchify(x, 4), lessons.strip_patchify(x, 4)
    assert good.shape == bad.shape and np.allclose(np.sort(good.ravel()), np.sort(bad.ravel()))
    assert np.array_equal(bad[:, 0], x[:, 0, :16].reshape(2, 48))  # a strip of row 0
    assert not np.array_equal(bad[:, 1], x[:, 0:4, 4:8].reshape(2, 48))  # not the 4×4 square
    assert np.array_equal(lessons.strip_unpatchify(bad, 4, 32), x)


def test_phrases_and_regions():
    assert lessons.phrase("go", "present_simple", "3sg") == "he goes."
    assert lessons.phrase("swim", "past_participle", "2sg") == "you have swum."
    assert lessons.phrase("work", "past_simple", "1sg") == "I worked."
    region = lessons.regions(ViTConfig(), n=300)
    assert region.shape == (300, 64) and set(np.unique(region)) == {0, 1, 2}
    assert (region[:, 0] == 0).all()  # the corner patch is background in every icon


@pytest.mark.slow
def test_the_lessons_end_to_end_on_a_tiny_budget(monkeypatch, tmp_path, data_300, capsys):
    """One seed, one epoch, 300 icons (a lab's of its own, in tmp_path): every lesson trains, is
    scored and looked inside, and the figures and tables are written from what it wrote; the
    summary names every seed it left out."""
    data = shutil.copytree(data_300, tmp_path / "data")
    monkeypatch.setattr(sweep, "DATA", data)
    monkeypatch.setattr(sweep, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(lessons, "RESULTS", tmp_path / "lessons")
    monkeypatch.setattr(lessons, "SEEDS", 1)
    monkeypatch.setattr(lessons, "PATCH_SIZES", (4, 8))
    monkeypatch.setattr(lessons, "PATCH_EPOCHS", 1)
    monkeypatch.setattr(lessons, "TEXT_STEPS", 20)
    monkeypatch.setattr(sweep, "recipe", lambda run: {**recipes.recipe(run), "epochs": 1})
    monkeypatch.setattr(sweep, "DATA_CACHE", tmp_path / "runs" / "sweep-data")
    for name in ("docs/lessons.md", "README.md"):
        shutil.copyfile(LAB / name, tmp_path / Path(name).name)
    monkeypatch.setattr(lessons, "DOC", tmp_path / "lessons.md")
    monkeypatch.setattr(lessons, "README", tmp_path / "README.md")
    lessons.main(["--data", str(data), "--jobs", "1"])
    out = tmp_path / "lessons"
    for name in lessons.ABLATIONS:
        for run in lessons.ABLATION_RUNS:
            entry = lessons.entry_of(out / name / run / "seed-0")
            assert entry is not None and entry["eval_all"]["n_icons"] == 1000, (name, run)
    bug = lessons.entry_of(out / "bug-patchify" / "full_factorised" / "seed-0")
    assert bug["command"][:1] != ["--with-bug"] and "--no-test" in bug["command"]
    inside = json.loads((out / "inside" / "full_factorised" / "inspect.json").read_text())
    assert np.array(inside["attention_vs_uniform"]["outline"]).shape == (4, 4)
    assert np.array(inside["position_cosine"]).shape == (64, 64)
    for png in ("ablations.png", "patch_size.png", "position_similarity.png",
                "attention_heads.png", "cls_heads.png", "text_loss.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG", png
    doc = (tmp_path / "lessons.md").read_text()
    assert "| no position embedding | 1 |" in doc and "| 8×8 | 16 |" in doc
    assert "86,567,656" in doc and "| `he g` |" in doc
    readme = (tmp_path / "README.md").read_text()
    assert "- **Position** ([more](docs/lessons.md#position))" in readme
    assert "- **A bug the accuracy hides**" in readme
    before = sorted(p.stat().st_mtime_ns for p in out.rglob("manifest.json"))
    lessons.main(["--data", str(data)])  # all done: nothing trained again
    assert sorted(p.stat().st_mtime_ns for p in out.rglob("manifest.json")) == before
    (out / "blocks1" / "tense" / "seed-0" / "manifest.json").unlink()
    capsys.readouterr()
    lessons.main(["--data", str(data), "--summary"])
    left = [line.replace(os.sep, "/") for line in capsys.readouterr().out.splitlines()
            if line.startswith("left out: ")]
    assert any(line.endswith("blocks1/tense/seed-0/manifest.json: missing (not trained yet, "
                             "or deleted)") for line in left)
    assert any("results/tense/seed-0/manifest.json: missing" in line for line in left)  # finals
    assert "| one block, tense task | — |" in (tmp_path / "lessons.md").read_text()
