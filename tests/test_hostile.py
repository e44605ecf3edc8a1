"""Hostile files and faults, fed to the real scripts: one line, the right exit status, no
traceback, nothing hanging, little memory, and earlier outputs exactly as they were."""

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import refused, snapshot

import eval as eval_script
import generate_icons as gi
import train
from minimodel.files import Outputs, recover, run_cli
from vit import TinyViT, ViTConfig

LAB = Path(__file__).parents[1]
POSIX = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/proc/self/status").exists(),
                           reason="FIFOs and the peak-memory figure (/proc) need Linux")


PEAK = ("import atexit, os, runpy, sys\n"  # run a script, and write its peak memory (VmHWM, kB)
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            open(os.environ['PEAK_FILE'], 'w').write(line.split()[1])\n"
        "atexit.register(peak)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def refused_as_program(*args, needle, code=2):
    """A script run as a program ends within seconds with one line, and peaks under 300 MB."""
    peak_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"peak-{os.getpid()}"
    done = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], cwd=LAB, timeout=60,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PEAK_FILE": str(peak_file)})
    err = done.stderr
    assert done.returncode == code, err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    peak_mb = int(peak_file.read_text()) / 1024
    peak_file.unlink()
    assert peak_mb < 300, f"{peak_mb:.0f} MB"
    return err


# ---------------------------------------------------------------- earlier outputs survive


@pytest.mark.slow
def test_a_bad_manifest_in_out_stops_the_run_before_anything_is_replaced(cli, data, previous):
    (previous / "manifest.json").write_text("{not json")
    refused(cli, data, previous, "manifest.json: not valid JSON", "fix or delete it")
    (previous / "manifest.json").write_text('{"runs": []}')  # valid JSON, wrong shape
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, "--epochs", 1)
    assert code == 2 and "expected JSON objects along runs" in err
    assert snapshot(previous) == before  # checked before the commit, nothing replaced


@pytest.mark.slow
def test_generate_with_a_bad_manifest_keeps_the_dataset(cli, data, tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text("[[[")
    before = snapshot(data / "icons"), snapshot(data)
    code, err = cli(gi.main, "--out", data, "--n", 300, "--seed", 3, "--manifest", bad)
    assert code == 2 and "manifest.json: not valid JSON" in err
    assert (snapshot(data / "icons"), snapshot(data)) == before


@pytest.mark.slow
def test_generate_replaces_icons_that_are_a_link_to_another_folder(data, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data / "icons", elsewhere)
    before = snapshot(elsewhere)
    (data / "icons").symlink_to(elsewhere, target_is_directory=True)
    gi.generate(data, n=300, seed=4)
    assert (data / "icons").is_dir() and not (data / "icons").is_symlink()
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".")) == []
    assert snapshot(elsewhere) == before  # what the link pointed to is left alone


@pytest.mark.slow
def test_a_full_disk_while_saving_names_the_file_and_keeps_the_old_outputs(
        cli, data, previous, monkeypatch):
    def no_space(fig, dpi=100):
        def write(f):
            raise OSError(28, "No space left on device")
        return write

    monkeypatch.setattr(train, "figure_writer", no_space)
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, "--epochs", 1, "--replace")
    assert code == 1 and err == f"error: {previous / 'loss.png'}: No space left on device\n"
    assert snapshot(previous) == before
    assert not [p for p in previous.iterdir() if p.name.startswith(".")]  # nothing staged left


@pytest.mark.slow
def test_two_runs_writing_one_manifest_at_once_keep_every_entry(tmp_path):
    code = ("import sys; from minimodel.files import Outputs\n"
            "for i in range(25):\n"
            "    with Outputs(sys.argv[1]) as o:\n"
            "        o.manifest(sys.argv[1] + '/manifest.json', i, 'runs', sys.argv[2] + str(i))\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), name])
               for name in ("a", "b")]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    runs = json.loads((tmp_path / "manifest.json").read_text())["runs"]
    assert len(runs) == 50


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL on this OS")
def test_a_run_killed_during_its_save_leaves_one_consistent_run(data_60, trained, tmp_path):
    """Kill train.py (SIGKILL, nothing can be deferred) just before, at and after the point where
    its save commits; then the folder, once recovered, holds the checkpoint and manifest entry of
    one run: the old one before that point, the new one after it."""
    kill_at = ("import os, signal, sys, train\n"
               "real, n = os.replace, [0]\n"
               "def replace(a, b):\n"
               "    n[0] += 1\n"
               "    if n[0] == int(sys.argv[1]): os.kill(os.getpid(), signal.SIGKILL)\n"
               "    real(a, b)\n"
               "os.replace = replace\n"
               "train.main(sys.argv[2:])\n")
    # os.replace calls of the save: 2i - 1 writes the journal before move i, 2i does move i
    # (i = 1..5: manifest, checkpoint, three plots). Killed at 1, the journal never lands;
    # at 2, it has landed and nothing has moved; at 10, only the last plot is left to move.
    runs = {}
    for k, seed in ((1, 1), (2, 2), (10, 2)):  # side by side: (k, the seed the folder ends with)
        out = shutil.copytree(trained("--seed", 1), tmp_path / f"k{k}")  # an earlier run
        runs[out] = seed, subprocess.Popen(
            [sys.executable, "-c", kill_at, str(k), "--data", str(data_60), "--out", str(out),
             "--epochs", "1", "--seed", "2", "--replace"], cwd=LAB, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
    for out, (seed, proc) in runs.items():
        assert proc.wait(timeout=120) == -signal.SIGKILL, out.name
        recover(out)
        _, meta = TinyViT.load(out / "checkpoint.npz")
        entry = json.loads((out / "manifest.json").read_text())["runs"]["tense"]
        assert meta["seed"] == entry["recipe"]["seed"] == seed, out.name
        assert not [p for p in out.iterdir() if p.name.startswith(".")], out.name


def test_recover_finishes_a_commit_from_its_journal(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    with pytest.raises(KeyboardInterrupt), Outputs(tmp_path) as outputs:
        outputs.file(tmp_path / "a.txt", lambda f: f.write(b"new a"))
        outputs.file(tmp_path / "b.txt", lambda f: f.write(b"new b"))
        raise KeyboardInterrupt  # before the commit: nothing changes
    assert (tmp_path / "a.txt").read_text() == "old a" and len(list(tmp_path.iterdir())) == 2
    # a commit that died after moving a.txt: its journal still lists b.txt
    dead = 2**22 + 12345  # above Linux's largest process id: no such process
    staged = tmp_path / f".b.txt.new-{dead}-1"
    staged.write_text("new b")
    (tmp_path / "a.txt").write_text("new a")
    journal = tmp_path / f".commit-{dead}-1.json"
    journal.write_text(json.dumps([["move", str(staged), str(tmp_path / "b.txt")]]))
    alive = tmp_path / f".c.txt.new-{os.getpid()}-2"  # a run still going: left alone
    alive.write_text("staged by a live run")
    recover(tmp_path)
    assert (tmp_path / "b.txt").read_text() == "new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "a.txt", "b.txt"]


# ---------------------------------------------------------------- only regular files, no hang


@pytest.mark.slow
@POSIX
@pytest.mark.parametrize("where", ["icon", "labels", "splits", "manifest"])
def test_a_fifo_is_refused_not_waited_on(data, previous, where):
    name = json.loads((data / "labels.json").read_text())[0]["filename"]
    path = {"icon": data / "icons" / name, "labels": data / "labels.json",
            "splits": data / "splits.json", "manifest": previous / "manifest.json"}[where]
    path.unlink()
    os.mkfifo(path)
    before = snapshot(previous) if where != "manifest" else None
    refused_as_program("train.py", "--data", data, "--out", previous, "--epochs", 1,
                       needle="not a regular file")
    if before is not None:
        assert snapshot(previous) == before


@pytest.mark.slow
@POSIX
def test_a_checkpoint_that_is_a_fifo_or_a_folder_is_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo.npz")
    refused_as_program("eval.py", "--checkpoint", tmp_path / "fifo.npz", needle="not a regular")
    (tmp_path / "dir.npz").mkdir()
    refused_as_program("eval.py", "--checkpoint", tmp_path / "dir.npz", needle="not a regular")


def test_links_out_of_the_data_folder_and_link_loops(cli, data, previous, tmp_path):
    outside = tmp_path / "labels.json"
    shutil.copy(data / "labels.json", outside)
    (data / "labels.json").unlink()
    (data / "labels.json").symlink_to(outside)
    refused(cli, data, previous, "labels.json: a link that leads out of")
    (data / "labels.json").unlink()
    shutil.copy(outside, data / "labels.json")
    name = json.loads(outside.read_text())[5]["filename"]
    (data / "icons" / name).unlink()
    (data / "icons" / name).symlink_to(data / "icons" / name)  # a loop
    refused(cli, data, previous, name, "unreadable")


# ---------------------------------------------------------------- bounds before allocation


def checkpoint_with(path, extra=None, config=None, meta="{}", arrays=None):
    model = TinyViT(ViTConfig())
    tensors = {name: p for name, p, _ in model.named_parameters()}
    tensors.update(arrays or {})
    np.savez_compressed(path, config=np.array(json.dumps(config or vars(model.cfg))),
                        meta=np.array(meta), **tensors, **(extra or {}))
    return path


@pytest.mark.slow
@POSIX
def test_a_small_checkpoint_hiding_a_huge_member_is_refused_unread(tmp_path):
    ckpt = tmp_path / "bomb.npz"
    with zipfile.ZipFile(checkpoint_with(ckpt), "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
            z.open("extra.npy", "w", force_zip64=True) as f:
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
        header["shape"] = (2**26,)  # 512 MiB of float64 zeros, 2 MB compressed
        np.lib.format.write_array_header_1_0(f, header)
        zero = bytes(2**20)
        for _ in range(2**9):
            f.write(zero)
    assert ckpt.stat().st_size < 5 * 2**20  # and read, it would break the 300 MB bound
    refused_as_program("eval.py", "--checkpoint", ckpt, needle="tensors do not fit the config")


@pytest.mark.slow
@POSIX
def test_a_checkpoint_asking_for_an_absurd_model_is_not_built(tmp_path):
    config = {**vars(ViTConfig()), "d_model": 65536, "n_heads": 1, "d_ff": 65536}
    ckpt = checkpoint_with(tmp_path / "huge.npz", config=config)
    refused_as_program("eval.py", "--checkpoint", ckpt, needle="parameters (at most 20,000,000)")


@pytest.mark.parametrize("change, needle", [
    ({"meta": "[1, 2]"}, "config and meta must be JSON objects"),
    ({"meta": "[" * 100_000}, "not a TinyViT checkpoint"),
    ({"arrays": {"pos": np.full((1, 65, 64), np.nan, np.float32)}}, "tensor pos holds NaN"),
    ({"config": {**vars(ViTConfig()), "image_size": 64}}, "made for 64×64×3 images"),
])
def test_checkpoints_that_would_give_a_traceback_or_nonsense(cli, tmp_path, change, needle):
    if "image_size" in str(change):  # a consistent model for 64×64 images
        cfg = ViTConfig(image_size=64)
        path = tmp_path / "m.npz"
        TinyViT(cfg).save(path, meta={"task": "tense"})
    else:
        path = checkpoint_with(tmp_path / "m.npz", meta=change.get("meta", '{"task": "tense"}'),
                               arrays=change.get("arrays"))
    code, err = cli(eval_script.main, "--checkpoint", path, "--data", LAB / "data")
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_a_data_folder_whose_training_icons_lack_a_class(cli, data, previous):
    splits = json.loads((data / "splits.json").read_text())
    labels = {lab["filename"]: lab for lab in json.loads((data / "labels.json").read_text())}
    part = splits["stratified"]
    part["test"] += [f for f in part["train"] if labels[f]["tense_id"] == 4]
    part["train"] = [f for f in part["train"] if labels[f]["tense_id"] != 4]
    (data / "splits.json").write_text(json.dumps(splits))
    refused(cli, data, previous, "no training icon has tense future")


def test_out_of_memory_is_one_line(cli):
    def main(argv):
        raise MemoryError

    code, err = cli(main)
    assert code == 1 and err.startswith("error: out of memory") and err.count("\n") == 1


# ---------------------------------------------------------------- what reaches the terminal


def test_control_characters_are_escaped(cli, data, previous):
    evil = "\x1b[31mred\x07.png"
    labels = json.loads((data / "labels.json").read_text())
    old = labels[0]["filename"]
    labels[0]["filename"] = evil
    (data / "labels.json").write_text(json.dumps(labels))
    splits = json.loads((data / "splits.json").read_text())
    for parts in splits.values():
        for names in parts.values():
            names[:] = [evil if n == old else n for n in names]
    (data / "splits.json").write_text(json.dumps(splits))
    err = refused(cli, data, previous, "is missing")
    assert "\x1b" not in err and "\x07" not in err and "\\x1b[31mred\\x07.png" in err


def test_run_cli_escapes_what_it_prints(capsys):
    with pytest.raises(SystemExit):
        run_cli(lambda argv: (_ for _ in ()).throw(OSError(2, "gone", "a\x1bb")))
    assert capsys.readouterr().err == "error: a\\x1bb: gone\n"
