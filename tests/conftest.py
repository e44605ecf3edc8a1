"""What the tests share: datasets and training runs made once per test session (a test copies
one before changing it), and the checks of a refused run."""

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
def data_60(data_300, tmp_path_factory):
    """The first 60 of those icons (four verbs in every tense and person) with splits drawn for
    them: a dataset every script accepts, a fifth of the files to copy and to read."""
    out = tmp_path_factory.mktemp("data60")
    (out / "icons").mkdir()
    labels = json.loads((data_300 / "labels.json").read_text())[:60]
    for lab in labels:
        shutil.copyfile(data_300 / "icons" / lab["filename"], out / "icons" / lab["filename"])
    for name, content in (("labels.json", labels), ("splits.json", gi.draw_splits(labels))):
        (out / name).write_text(json.dumps(content, indent=2) + "\n")
    return out


@pytest.fixture(scope="session")
def data_1000(tmp_path_factory):
    """The default 1000 icons, rendered anew (not the committed ones)."""
    out = tmp_path_factory.mktemp("data1000")
    gi.generate(out, n=1000, seed=0)
    return out


@pytest.fixture(scope="session")
def trained(data_300, tmp_path_factory):
    """trained(*options) -> the folder (checkpoint, manifest, plots) of
    `train.py --data <data_300> --epochs 1 *options`, trained once per session whichever tests
    ask for it. Read it as it is; copy it (shutil.copytree) before changing anything in it."""
    runs = {}

    def run(*options):
        options = tuple(map(str, options))
        if options not in runs:
            out = tmp_path_factory.mktemp("run")
            train.main(["--data", str(data_300), "--out", str(out), "--epochs", "1", *options])
            runs[options] = out
        return runs[options]

    return run


# every task, head and split, trained by `trained(*smoke_options(...))`: test_stretch smoke-runs
# them, test_diagnostics reads their diagnostics
SMOKE_RUNS = [  # (task, head, split, the run's name in the manifest)
    ("tense_person", "flat", "stratified", "tense_person"),
    ("full", "flat", "stratified", "full"),
    ("full", "factorised", "stratified", "full_factorised"),
    ("full", "factorised", "combos", "full_factorised_combos"),
]


def smoke_options(task, head, split):
    return "--task", task, "--head", head, "--split", split, "--shift", 1


@pytest.fixture
def data(data_60, tmp_path):
    """A fresh copy of a small good dataset, to break."""
    shutil.copytree(data_60, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture(scope="session")
def earlier_run(tmp_path_factory):
    """An earlier run's checkpoint and manifest, made once per session."""
    out = tmp_path_factory.mktemp("earlier")
    TinyViT(ViTConfig()).save(out / "checkpoint.npz", meta={"task": "tense", "run": "tense"})
    (out / "manifest.json").write_text('{"runs": {"tense": {"test_accuracy": 0.5}}}\n')
    return out


@pytest.fixture
def previous(earlier_run, tmp_path):
    """An output folder holding an earlier run's checkpoint and manifest, to keep intact."""
    shutil.copytree(earlier_run, tmp_path / "out")
    return tmp_path / "out"


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
