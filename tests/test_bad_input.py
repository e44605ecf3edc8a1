"""Bad input and faults: one clear line, a non-zero exit, and nothing on disk damaged.

Each case runs a script's real entry point through run_cli, as the command line does.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import refused, snapshot
from PIL import Image

import eval as eval_script
import generate_icons as gi
import train
from minimodel.files import LabError, atomic_write, interrupts_deferred
from vit import TinyViT, ViTConfig, tiny_config

LAB = Path(__file__).parents[1]


def edit_labels(data, change):
    labels = json.loads((data / "labels.json").read_text())
    labels = change(labels) or labels
    (data / "labels.json").write_text(json.dumps(labels))
    return labels


# ---------------------------------------------------------------- the data folder


def test_missing_or_empty_data_folder(cli, tmp_path, previous):
    err = refused(cli, tmp_path / "nowhere", previous, "nowhere: no such folder", "--data",
                  "the lab's own")  # a typo is named, and the default with it
    assert "regenerate" not in err
    (tmp_path / "empty").mkdir()
    refused(cli, tmp_path / "empty", previous, "labels.json: missing", "generate_icons.py")


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid JSON"),
    ('{"filename": "a.png"}', "expected a non-empty list"),
    ("[]", "expected a non-empty list"),
    ('[{"filename": "a.png"}]', "must have exactly the fields"),
    ("\xff\xfe", "not valid JSON"),
])
def test_labels_file_that_is_not_a_label_list(cli, data, previous, content, needle):
    (data / "labels.json").write_text(content, encoding="latin-1")
    refused(cli, data, previous, "labels.json", needle)


def test_labels_file_missing(cli, data, previous):
    (data / "labels.json").unlink()
    refused(cli, data, previous, "labels.json: missing")


@pytest.mark.parametrize("field, value, needle", [
    ("tense_id", "1", "tense_id='1' must be an int in [0, 5)"),
    ("tense_id", True, "tense_id=True must be an int"),
    ("tense_id", 7, "tense_id=7 must be an int in [0, 5)"),
    ("verb_id", -1, "verb_id=-1"),
    ("class_id", 3, "class_id=3 does not match its ids (expected 0)"),
    ("filename", 5, "filename 5 must be a plain .png name"),
])
def test_bad_label_values(cli, data, previous, field, value, needle):
    edit_labels(data, lambda labels: labels[0].update({field: value}))
    refused(cli, data, previous, "entry 0", needle)


def test_duplicate_filenames(cli, data, previous):
    edit_labels(data, lambda labels: labels[1].update(filename=labels[0]["filename"]))
    refused(cli, data, previous, "entry 1: duplicate filename verb_work_tense_infinitive_")


@pytest.mark.parametrize("name", [
    "/etc/passwd.png", "../labels.png", "../../outside.png", "sub/dir.png", "..\\x.png",
    "nul\x00.png", "..",
])
def test_filenames_that_leave_the_icons_folder_are_never_opened(cli, data, previous, name):
    edit_labels(data, lambda labels: labels[0].update(filename=name))
    refused(cli, data, previous, "must be a plain .png name inside icons/")


def test_link_out_of_the_icons_folder_is_never_opened(cli, data, previous, tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (32, 32)).save(outside)
    target = data / "icons" / json.loads((data / "labels.json").read_text())[0]["filename"]
    target.unlink()
    target.symlink_to(outside)
    refused(cli, data, previous, target.name, "resolves outside icons/")


def test_missing_icons(cli, data, previous):
    names = [lab["filename"] for lab in json.loads((data / "labels.json").read_text())[:5]]
    for name in names:
        (data / "icons" / name).unlink()
    err = refused(cli, data, previous, f"{names[0]} is missing", "and 2 more",
                  "generate_icons.py")
    assert names[4] not in err  # the first few, then a count


def test_missing_icons_folder(cli, data, previous):
    shutil.rmtree(data / "icons")
    refused(cli, data, previous, "icons: missing", "generate_icons.py")


def write_png(path, size=(32, 32), mode="RGB"):
    Image.new(mode, size).save(path)


@pytest.mark.parametrize("damage, needle", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "unreadable"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300)), "unreadable"),
    (lambda p: p.write_text("just text, not an image"), "unreadable"),
    (lambda p: Image.new("RGB", (32, 32)).save(p, format="JPEG"), "unreadable"),
    (lambda p: write_png(p, size=(16, 16)), "RGB 16×16, expected RGB 32×32"),
    (lambda p: write_png(p, mode="RGBA"), "RGBA 32×32, expected RGB 32×32"),
    (lambda p: write_png(p, mode="1", size=(5000, 5000)), "1 5000×5000, expected RGB 32×32"),
    pytest.param(lambda p: write_png(p, mode="1", size=(20000, 20000)), "unreadable",
                 marks=pytest.mark.slow),  # Pillow's bomb guard
    (lambda p: p.write_bytes(os.urandom(200_000)), "too large"),
])
def test_broken_icons(cli, data, previous, damage, needle):
    name = json.loads((data / "labels.json").read_text())[3]["filename"]
    damage(data / "icons" / name)
    refused(cli, data, previous, name, needle)


# ---------------------------------------------------------------- the splits file


def edit_splits(data, change):
    splits = json.loads((data / "splits.json").read_text())
    change(splits)
    (data / "splits.json").write_text(json.dumps(splits))


@pytest.mark.parametrize("change, needle", [
    (lambda s: s["stratified"]["test"].append("verb_nope_tense_x_person_y_0.png"),
     "split stratified names 'verb_nope_tense_x_person_y_0.png', which labels.json does not"),
    (lambda s: s["combos"]["val"].append(s["combos"]["test"][0]), "puts an icon in two parts"),
    (lambda s: s.pop("combos"), "expected an object with the splits stratified, combos"),
    (lambda s: s["stratified"].pop("val"), "must have non-empty lists of filenames"),
    (lambda s: s["stratified"].update(test=[]), "must have non-empty lists of filenames"),
])
def test_bad_splits_file(cli, data, previous, change, needle):
    edit_splits(data, change)
    refused(cli, data, previous, "splits.json", needle, "generate_icons.py")


def test_missing_or_unreadable_splits_file(cli, data, previous):
    (data / "splits.json").write_text("[" * 100_000)
    refused(cli, data, previous, "splits.json: not valid JSON")
    (data / "splits.json").unlink()
    refused(cli, data, previous, "splits.json: missing", "generate_icons.py")


# ---------------------------------------------------------------- checkpoints


def evaluate_refused(cli, checkpoint, *needles, args=()):
    before = snapshot(checkpoint.parent) if checkpoint.parent.exists() else None
    code, err = cli(eval_script.main, "--checkpoint", checkpoint, "--data", LAB / "data", *args)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    if before is not None:
        assert snapshot(checkpoint.parent) == before
    return err


def test_missing_checkpoint(cli, tmp_path):
    evaluate_refused(cli, tmp_path / "none.npz", "no such checkpoint", "run train.py")


def test_truncated_or_corrupt_checkpoint(cli, previous):
    ckpt = previous / "checkpoint.npz"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:5000])
    evaluate_refused(cli, ckpt, "truncated or corrupt checkpoint", "retrain")
    ckpt.write_bytes(data[:2000] + os.urandom(5000) + data[7000:])
    evaluate_refused(cli, ckpt, "checkpoint", "retrain")
    ckpt.write_bytes(os.urandom(5000))
    evaluate_refused(cli, ckpt, "not a checkpoint (.npz) file")
    evaluate_refused(cli, LAB / "README.md", "not a checkpoint (.npz) file")


def test_checkpoint_with_object_arrays_is_never_unpickled(cli, tmp_path):
    ckpt = tmp_path / "evil.npz"
    np.savez(ckpt, config=np.array([{"n_classes": 5}], dtype=object))
    err = evaluate_refused(cli, ckpt, "holds Python objects, which are never loaded")
    assert "unsafely" not in err


def test_checkpoint_for_another_task_or_config(cli, tmp_path):
    ckpt = tmp_path / "m.npz"
    TinyViT(ViTConfig(n_classes=7)).save(ckpt, meta={"task": "tense"})
    evaluate_refused(cli, ckpt, "head has 7 outputs, task tense with a flat head has 5")
    TinyViT(ViTConfig()).save(ckpt, meta={"task": "tense"})
    evaluate_refused(cli, ckpt, "trained for task tense, not full", args=("--task", "full"))
    TinyViT(ViTConfig()).save(ckpt, meta={"task": "colours"})
    evaluate_refused(cli, ckpt, "unknown task, head or split", "'colours'")
    TinyViT(tiny_config()).save(ckpt)
    with pytest.raises(LabError, match="d_model=8 \\(expected 64\\)"):
        TinyViT.load(ckpt, expect=ViTConfig(n_classes=3))


@pytest.mark.parametrize("field", ["task", "head", "split", "run", "dataset_fingerprint"])
@pytest.mark.parametrize("value, shown", [(["tense"], "a list"), (3, "a number"),
                                          (None, "null"), ({"a": 1}, "an object")])
def test_checkpoint_metadata_of_the_wrong_type(cli, tmp_path, field, value, shown):
    ckpt = tmp_path / "m.npz"
    meta = {"task": "tense", "head": "flat", "split": "stratified", "run": "tense",
            "dataset_fingerprint": "0" * 64, field: value}
    TinyViT(ViTConfig()).save(ckpt, meta=meta)
    evaluate_refused(cli, ckpt, f"metadata field '{field}' is {shown}, not a string", "retrain")


def test_checkpoint_with_a_tampered_config(cli, tmp_path):
    ckpt = tmp_path / "m.npz"
    model = TinyViT(ViTConfig())
    arrays = {name: p for name, p, _ in model.named_parameters()}
    bad = {**json.loads(json.dumps(vars(model.cfg))), "n_classes": -1}
    np.savez(ckpt, config=np.array(json.dumps(bad)), meta=np.array("{}"), **arrays)
    evaluate_refused(cli, ckpt, "bad config", "n_classes=-1 must be a positive integer")
    arrays["pos"] = arrays["pos"][:, :10]
    np.savez(ckpt, config=np.array(json.dumps(vars(model.cfg))), meta=np.array("{}"), **arrays)
    evaluate_refused(cli, ckpt, "tensor pos is float32(1, 10, 64), expected float(1, 65, 64)")


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize("args, needle", [
    (("--epochs", "0"), "--epochs must be positive, got 0"),
    (("--batch-size", "-3"), "--batch-size must be positive, got -3"),
    (("--lr", "0"), "--lr must be positive"),
    (("--lr", "nan"), "--lr must be positive, got nan"),
    (("--lr", "inf"), "--lr must be at most 100"),
    (("--lr", "1e30"), "--lr must be at most 100"),
    (("--epochs", "100000"), "--epochs must be at most 10000"),
    (("--seed", "-1"), "--seed must be between 0 and 2**32 - 1"),
    (("--task", "colour"), "invalid choice: 'colour'"),
    (("--epochs", "two"), "invalid int value: 'two'"),
])
def test_train_usage_errors(cli, previous, args, needle):
    before = snapshot(previous)
    code, err = cli(train.main, "--out", previous, *args)
    assert code == 2 and "usage: " in err and needle in err, err
    assert snapshot(previous) == before


def test_output_path_that_cannot_be_written(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = cli(train.main, "--out", blocker / "out")
    assert code == 2 and "usage: " in err and "cannot write there" in err
    code, err = cli(gi.main, "--out", blocker / "data")
    assert code == 2 and "cannot write there" in err
    code, err = cli(eval_script.main, "--checkpoint", blocker / "checkpoint.npz")
    assert code == 2 and "cannot write there" in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("foreign", ["readme.txt", ".gitkeep", "my_icon.png", "sub/"])
def test_generate_never_deletes_files_it_did_not_make(cli, tmp_path, foreign):
    icons = tmp_path / "mine" / "icons"
    icons.mkdir(parents=True)
    (icons / "verb_work_tense_future_person_1sg_0.png").write_bytes(b"one of ours")
    if foreign.endswith("/"):
        (icons / foreign).mkdir()
    else:
        (icons / foreign).write_text("the user's")
    before = snapshot(icons)
    code, err = cli(gi.main, "--out", tmp_path / "mine", "--n", 300,
                    "--manifest", tmp_path / "mine" / "m.json")
    assert code == 2 and err.count("\n") == 1, err
    assert foreign.rstrip("/") in err and "move them out, or choose another --out" in err
    assert snapshot(icons) == before and (icons / foreign.rstrip("/")).exists()
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["icons"]  # nothing else


def test_generate_names_three_foreign_files_and_counts_the_rest(tmp_path):
    (tmp_path / "icons").mkdir()
    for i in range(5):
        (tmp_path / "icons" / f"note{i}.txt").write_text("")
    with pytest.raises(LabError, match=r"\(note0.txt, note1.txt, note2.txt and 2 more\)"):
        gi.generate(tmp_path, n=300)


def test_generate_usage_errors(cli, tmp_path):
    for args, needle in ((("--n", "10"), "--n must be between 300"),
                         (("--n", "10000000"), "and 100,000, got 10000000"),
                         (("--seed", "-3"), "--seed must be between 0 and 2**32 - 1")):
        code, err = cli(gi.main, *args, "--out", tmp_path / "d")
        assert code == 2 and needle in err, err
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------- faults while training


@pytest.mark.slow
def test_diverging_run_stops_and_keeps_the_previous_files(cli, data, previous):
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, "--lr", "100", "--replace")
    assert code == 2 and ", step " in err and ("not finite" in err or "loss is" in err)
    assert "try a lower --lr" in err
    assert snapshot(previous) == before


def test_a_non_finite_gradient_is_named():
    model = TinyViT(tiny_config())
    model.blocks[1].grads["W_1"][0, 0] = np.nan
    with pytest.raises(LabError, match="epoch 3, step 7: the gradient of blocks.1.W_1 is not"):
        train.check_finite(model, "epoch 3, step 7", 1e-3)
    train.check_finite(TinyViT(tiny_config()), "here", 1e-3)  # finite: no complaint


# train.py as Ctrl-C finds it in a terminal. A job started in the background inherits SIGINT
# ignored (a Unix convention Python keeps), and so would its children: restore Python's handler.
CTRL_C_REACHES = ("import runpy, signal, sys\n"
                  "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                  "sys.argv = sys.argv[1:]\n"
                  "runpy.run_path(sys.argv[0], run_name='__main__')\n")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no SIGINT to send a process")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_exits_cleanly_and_keeps_the_previous_files(data_300, previous, sig):
    before = snapshot(previous)
    proc = subprocess.Popen(  # 20 epochs of 210 icons: seconds, long after the signal
        [sys.executable, "-c", CTRL_C_REACHES, str(LAB / "train.py"), "--data", str(data_300),
         "--out", str(previous), "--replace"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=LAB)
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("epoch  1/"):
            break
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "interrupted: files from before this run are as they were\n"
    assert snapshot(previous) == before


# ---------------------------------------------------------------- writes are all or nothing


def test_a_save_interrupted_midway_leaves_the_old_file(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("old")

    def half_then_crash(f):
        f.write(b"new, half writ")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_checkpoint_save_interrupted_midway_leaves_the_old_one(previous, monkeypatch):
    before = snapshot(previous)

    def savez_then_crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        TinyViT(ViTConfig()).save(previous / "checkpoint.npz")
    assert snapshot(previous) == before


def test_an_interrupt_while_saving_waits_for_the_save():
    done = []
    with pytest.raises(KeyboardInterrupt, match="saved"), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("all files written")
    assert done == ["all files written"]


@pytest.mark.slow
def test_generate_interrupted_while_rendering_keeps_the_old_dataset(data, monkeypatch):
    before = snapshot(data / "icons"), (data / "labels.json").read_bytes()
    names = sorted(p.name for p in data.iterdir())
    calls = []

    def save_some_then_stop(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 50:
            raise KeyboardInterrupt
        return original(self, fp, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", save_some_then_stop)
    with pytest.raises(KeyboardInterrupt):
        gi.generate(data, n=300, seed=5)
    assert (snapshot(data / "icons"), (data / "labels.json").read_bytes()) == before
    assert sorted(p.name for p in data.iterdir()) == names  # no staging left
