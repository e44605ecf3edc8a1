"""The lab on a learner's laptop: no Linux-only call without a fallback, any BLAS, any core
count, and the same weights whatever the core count."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import train
from minimodel import parallel
from vit import TinyViT

LAB = Path(__file__).parents[1]


def blas_threads_now():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_cpu_count_without_process_cpu_count_or_affinity(monkeypatch):
    monkeypatch.delenv("MINIMODEL_CORES", raising=False)  # (a share set for this shell)
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert parallel.cpu_count() == (os.cpu_count() or 1)


@pytest.mark.slow
def test_training_leaves_the_blas_threads_as_it_found_them(data_60, tmp_path):
    before = blas_threads_now()
    train.main(["--data", str(data_60), "--out", str(tmp_path), "--epochs", "1"])
    assert blas_threads_now() == before


@pytest.mark.slow
def test_macos_or_windows_without_affinity_or_a_known_blas(data_60, data_300, trained,
                                                          tmp_path):
    """A Python without os.sched_getaffinity, and a BLAS threadpoolctl cannot see: train.py and
    eval.py as real scripts in new processes (sitecustomize.py removes both), side by side."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "for name in ('sched_getaffinity', 'process_cpu_count'):\n"
        "    if hasattr(os, name): delattr(os, name)\n"
        "import threadpoolctl\n"
        "threadpoolctl.threadpool_info = lambda: []\n"
        "class NoLimits:\n"
        "    def __init__(self, *a, **k): pass\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *a): pass\n"
        "    def restore_original_limits(self): pass\n"
        "threadpoolctl.threadpool_limits = NoLimits\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get(
        "PYTHONPATH", "")])}
    out, run = tmp_path / "x", shutil.copytree(trained(), tmp_path / "run")
    scripts = [subprocess.Popen([sys.executable, LAB / script, *map(str, args)], cwd=LAB, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for script, *args in (
                   ["train.py", "--data", data_60, "--out", out, "--epochs", "1"],
                   ["eval.py", "--data", data_300, "--checkpoint", run / "checkpoint.npz"])]
    for script in scripts:
        _, err = script.communicate(timeout=300)
        assert script.returncode == 0, err
    assert '"threads": null' in (out / "manifest.json").read_text()  # no BLAS it knows
    assert '"eval"' in (run / "manifest.json").read_text()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity on this OS")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity")
                    else True, reason="needs two cores")
@pytest.mark.slow
def test_one_core_or_two_gives_bit_identical_weights(data_300, trained, tmp_path):
    """Pinned to one core, DataParallel runs its two shards one after the other: the same
    weights as the run on two (trained in this process, which has both)."""
    code = (f"import os, train; os.sched_setaffinity(0, {{0}}); train.main(['--data', "
            f"{str(data_300)!r}, '--out', {str(tmp_path)!r}, '--epochs', '1'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=LAB, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    cores = [json.loads((out / "manifest.json").read_text())["runs"]["tense"]["environment"]
             ["cores"] for out in (tmp_path, trained())]
    assert cores[0] == 1 and cores[1] >= 2
    one, _ = TinyViT.load(tmp_path / "checkpoint.npz")
    two, _ = TinyViT.load(trained() / "checkpoint.npz")
    assert np.array_equal(one.flat_params, two.flat_params)
