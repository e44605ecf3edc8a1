"""The lab on a learner's laptop: no Linux-only call without a fallback, any BLAS, any core
count, and the same weights whatever the core count."""

import os
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
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert parallel.cpu_count() == (os.cpu_count() or 1)


@pytest.mark.slow
def test_training_leaves_the_blas_threads_as_it_found_them(data_300, tmp_path):
    before = blas_threads_now()
    train.main(["--data", str(data_300), "--out", str(tmp_path), "--epochs", "1"])
    assert blas_threads_now() == before


@pytest.mark.slow
def test_macos_or_windows_without_affinity_or_a_known_blas(data_300, tmp_path):
    """A Python without os.sched_getaffinity, and a BLAS threadpoolctl cannot see: train a step
    and evaluate, as real scripts in a new process (sitecustomize.py removes both)."""
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
    out = tmp_path / "x"
    for script, *args in (["train.py", "--data", data_300, "--out", out, "--epochs", "1"],
                          ["eval.py", "--data", data_300, "--checkpoint", out / "checkpoint.npz"]):
        done = subprocess.run([sys.executable, LAB / script, *map(str, args)], cwd=LAB, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    assert '"threads": null' in (out / "manifest.json").read_text()  # no BLAS it knows


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity on this OS")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity")
                    else True, reason="needs two cores")
@pytest.mark.slow
def test_one_core_or_two_gives_bit_identical_weights(data_300, tmp_path):
    """Pinned to one core, DataParallel runs its two shards one after the other: same weights."""

    def weights(out, cores):
        code = (f"import os, train; os.sched_setaffinity(0, {cores}); train.main(['--data', "
                f"{str(data_300)!r}, '--out', {str(out)!r}, '--epochs', '1'])")
        done = subprocess.run([sys.executable, "-c", code], cwd=LAB, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        model, _ = TinyViT.load(out / "checkpoint.npz")
        return model.flat_params

    one, two = weights(tmp_path / "one", {0}), weights(tmp_path / "two", {0, 1})
    assert np.array_equal(one, two)
