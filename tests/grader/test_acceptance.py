"""The spec's acceptance, on your code: the lab's three scripts end to end on the tense task.
Needs every Block. `uv run pytest -m acceptance` (about a minute)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]
LAB = Path(__file__).parents[2]


def test_the_lab_on_your_code_reaches_the_spec(tmp_path):
    """The spec's acceptance: generate_icons.py, train.py and eval.py, as written, on the tense
    task: ≥ 80% of the test icons, trained within 5 minutes (a 2-core laptop takes ~30 s)."""
    def script(*argv):
        done = subprocess.run([sys.executable, *argv], cwd=LAB, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"{argv[0]} failed:\n{done.stderr[-2000:]}"

    script("generate_icons.py", "--out", tmp_path / "data")
    script("train.py", "--data", tmp_path / "data", "--out", tmp_path / "run")
    script("eval.py", "--checkpoint", tmp_path / "run" / "checkpoint.npz", "--data",
           tmp_path / "data")
    run = json.loads((tmp_path / "run" / "manifest.json").read_text())["runs"]["tense"]
    assert run["eval"]["test_accuracy"] >= 0.8, f"test accuracy {run['eval']['test_accuracy']}"
    assert run["training_seconds"] <= 300, f"trained in {run['training_seconds']} s"
    for name in ("loss.png", "accuracy.png", "confusion_matrix.png"):
        assert (tmp_path / "run" / name).is_file(), name
