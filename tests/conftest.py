"""Datasets rendered once per test session and shared by every test that only reads them."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import generate_icons as gi
import train
from minimodel.files import run_cli
from vit import TinyViT, ViTConfig

LAB = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def data_300(tmp_path_factory):
    """300 icons, one per combination: the smallest complete dataset. The same as
    `generate(out, n=300, seed=0)` renders (an icon's pixels depend only on the seed and its
    verb, tense, person and index), taken from the committed icons to save the rendering."""
    out = tmp_path_factory.mktemp("data300")
    (out / "icons").mkdir()
    labels = [gi.label(*item) for item in gi.icon_list(300)]
    for lab in labels:
        shutil.copyfile(LAB / "data" / "icons" / lab["filename"], out / "icons" / lab["filename"])
    for name, content in (("labels.json", labels), ("splits.json", gi.draw_splits(labels))):
        (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


@pytest.fixture(scope="session")
def data_1000(tmp_path_factory):
    """The default 1000 icons, rendered anew (not the committed ones)."""
    out = tmp_path_factory.mktemp("data1000")
    gi.generate(out, n=1000, seed=0)
    return out


@pytest.fixture
def data(data_300, tmp_path):
    """A fresh copy of a good 300-icon dataset, to break."""
    shutil.copytree(data_300, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def previous(tmp_path):
    """An output folder holding an earlier run's checkpoint and manifest, to keep intact."""
    out = tmp_path / "out"
    out.mkdir()
    TinyViT(ViTConfig()).save(out / "checkpoint.npz", meta={"task": "tense", "run": "tense"})
    (out / "manifest.json").write_text('{"runs": {"tense": {"test_accuracy": 0.5}}}\n')
    return out


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file()}


@pytest.fixture
def cli(capsys):
    """run(main, *argv) -> (exit status, stderr), for a script's main."""

    def run(main, *argv):
        with pytest.raises(SystemExit) as stop:
            run_cli(main, [str(a) for a in argv])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return stop.value.code, err

    return run


def refused(cli, data, previous, *needles):
    """Train on `data`: exit 2, one line naming the problem and the fix, nothing changed."""
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, "--epochs", 1)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert snapshot(previous) == before
    return err
