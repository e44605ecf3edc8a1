"""Results a sweep can trust: result folders as real sweeps leave them (partial, corrupt, of other
code), eval --all's own folder, plain output on an ASCII console, titles from labels.json, and a
current folder deleted meanwhile. Each makes the situation for real and checks the one-line
message or the correct result, and that nothing committed changed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snapshot

import eval as evaluate_script
import sweep
import train
from vit import TinyViT

LAB = Path(__file__).parents[1]


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A copy of the lab's results for the tense and tense_person runs, its selection, its
    README and its icons (what the results were trained on), where sweep.py reads them."""
    lab = tmp_path / "lab"
    shutil.copytree(LAB / "data", lab / "data")
    for run in ("tense", "tense_person"):
        shutil.copytree(LAB / "results" / run, lab / "results" / run)
    for name in ("results/selection.json", "results/same_code.json", "README.md",
                 "docs/report.md"):
        (lab / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LAB / name, lab / name)
    monkeypatch.setattr(sweep, "LAB", lab)
    monkeypatch.setattr(sweep, "DATA", lab / "data")
    monkeypatch.setattr(sweep, "RESULTS", lab / "results")
    monkeypatch.setattr(sweep, "SELECTION", lab / "results" / "selection.json")
    monkeypatch.setattr(sweep, "RUNS", {k: sweep.RUNS[k] for k in ("tense", "tense_person")})
    monkeypatch.setattr(sweep, "same_code", lambda lab: {"07d27b4005e2070c"})
    return lab / "results"


def test_the_summary_leaves_out_what_it_cannot_trust_and_says_so(results, capsys):
    seeds = results / "tense"
    (seeds / "seed-0" / "manifest.json").write_text('{"runs": {"tense": {"test_acc')  # cut
    (seeds / "seed-1" / "manifest.json").write_text("")  # emptied by a full disk
    m = json.loads((seeds / "seed-2" / "manifest.json").read_text())
    m["runs"]["tense"]["test_accuracy"] = "0.99"  # edited by hand into a string
    (seeds / "seed-2" / "manifest.json").write_text(json.dumps(m))
    m = json.loads((seeds / "seed-3" / "manifest.json").read_text())
    del m["runs"]["tense"]["eval"]  # trained, not scored
    (seeds / "seed-3" / "manifest.json").write_text(json.dumps(m))
    m = json.loads((results / "tense_person" / "seed-4" / "manifest.json").read_text())
    m["runs"]["tense_person"]["environment"]["training_code"] = "0123456789abcdef"  # other code
    (results / "tense_person" / "seed-4" / "manifest.json").write_text(json.dumps(m))
    sweep.main(["--summary"])
    out = capsys.readouterr().out
    left = [line for line in out.splitlines() if line.startswith("left out: ")]
    assert len(left) == 4 and all(f"seed-{k}" in " ".join(left) for k in range(4))
    assert "not valid JSON" in left[0] and "not valid JSON" in left[1]
    assert "test_accuracy is '0.99', not a number" in left[2]
    assert "trained but not scored (eval missing)" in left[3]
    report = (results.parent / "docs" / "report.md").read_text()
    assert "| tense | spec | 99.7 (99.0–100.0) | 1 |" in report  # seed 4 alone
    assert "| tense_person † |" in report and "seed 4" in report.split("† trained by")[1]
    assert "| tense (5) | spec |" in (results.parent / "README.md").read_text()
    assert (results / "seeds.png").read_bytes()[:4] == b"\x89PNG"


def test_the_summary_names_every_seed_it_left_out(results, capsys):
    """A seed deleted, and one trained on other icons: named, the table made of the rest."""
    shutil.rmtree(results / "tense" / "seed-3")
    m = json.loads((results / "tense" / "seed-1" / "manifest.json").read_text())
    m["runs"]["tense"]["dataset"]["fingerprint"] = "0" * 64
    (results / "tense" / "seed-1" / "manifest.json").write_text(json.dumps(m))
    sweep.main(["--summary"])
    left = [line.replace(os.sep, "/") for line in capsys.readouterr().out.splitlines()
            if line.startswith("left out: ")]
    assert left[0].endswith("tense/seed-1/manifest.json: trained on other icons (00000000…) "
                            "than --data's (439a1e94…)")
    assert left[1].endswith("tense/seed-3/manifest.json: missing (not trained yet, or deleted)")
    assert len(left) == 2
    assert "| tense | spec | 99.7 (99.0–100.0) | 3 |" in (results.parent / "docs" /
                                                         "report.md").read_text()


def test_a_bad_selection_file_stops_the_summary_before_anything_is_drawn(results, cli):
    (results / "selection.json").write_text('{"tense": {"spec": {"seeds": {"0": {}}}}}')
    docs = results.parent / "README.md", results.parent / "docs" / "report.md"
    before = snapshot(results), [d.read_bytes() for d in docs]
    code, err = cli(sweep.main, "--summary")
    assert code == 2 and "selection.json: not as sweep.py --select writes it" in err
    assert (snapshot(results), [d.read_bytes() for d in docs]) == before


def test_a_resumed_sweep_stops_on_a_corrupt_manifest_before_training(results, cli):
    (results / "tense" / "seed-2" / "manifest.json").write_text("{")
    code, err = cli(sweep.main, "--plan", "--runs", "tense")
    assert code == 2 and "seed-2/manifest.json: not valid JSON" in err.replace(os.sep, "/")
    assert len(err.strip().splitlines()) == 1


def test_a_scaling_point_not_yet_scored_is_left_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "SCALING", tmp_path / "scaling")
    shutil.copytree(LAB / "results" / "scaling" / "full", tmp_path / "scaling" / "full")
    path = tmp_path / "scaling" / "full" / "n-500" / "seed-0" / "manifest.json"
    m = json.loads(path.read_text())
    del m["runs"]["full"]["eval_all"]
    path.write_text(json.dumps(m))
    points, *_ = sweep.scaling_points()
    assert len(points["full"][500]) == 1 and len(points["full"][1000]) == 2
    assert "trained but not scored (eval_all missing)" in capsys.readouterr().out


# ---------------------------------------------------------------- eval --all's own folder


@pytest.fixture
def lab_model(trained, tmp_path, monkeypatch, data_300):
    """A copy of a trained run standing for the lab's top level."""
    lab = shutil.copytree(trained(), tmp_path / "lab")
    monkeypatch.setattr(evaluate_script, "LAB", lab)
    monkeypatch.setattr(evaluate_script, "DATA", data_300)
    return lab


@pytest.mark.slow
def test_eval_all_on_the_labs_model_never_touches_a_users_run(lab_model, data_300):
    mine = lab_model / "runs" / "tense"
    mine.mkdir(parents=True)
    (mine / "manifest.json").write_text('{"runs": {"tense": {"eval_all": {"accuracy": 0.5}}}}')
    before = snapshot(mine), (lab_model / "manifest.json").read_bytes()
    evaluate_script.main(["--checkpoint", str(lab_model / "checkpoint.npz"), "--all"])
    assert snapshot(mine) == before[0] and (lab_model / "manifest.json").read_bytes() == before[1]
    assert "eval_all" in json.loads((lab_model / "runs" / "lab" / "manifest.json").read_text())[
        "runs"]["tense"]


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_linked_checkpoint_at_the_top_level_is_the_labs(lab_model, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(lab_model / "checkpoint.npz", elsewhere / "checkpoint.npz")
    (lab_model / "checkpoint.npz").symlink_to(elsewhere / "checkpoint.npz")
    before = (lab_model / "manifest.json").read_bytes()
    evaluate_script.main(["--checkpoint", str(lab_model / "checkpoint.npz"), "--all"])
    assert (lab_model / "manifest.json").read_bytes() == before
    assert (lab_model / "runs" / "lab" / "manifest.json").exists()


@pytest.mark.parametrize("name", ["..", "../..", "a/b", "", "x\\y"])
def test_a_run_name_that_is_a_path_is_refused(trained, tmp_path, cli, name, data_300):
    model, meta = TinyViT.load(trained() / "checkpoint.npz")
    out = tmp_path / "ckpt"
    out.mkdir()
    model.save(out / "checkpoint.npz", meta={**meta, "run": name})
    before = snapshot(tmp_path)
    code, err = cli(evaluate_script.main, "--checkpoint", out / "checkpoint.npz", "--data",
                    data_300, "--all", "--out", out)
    assert code == 2 and "not a plain name" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- consoles, labels, folders


@pytest.mark.slow
def test_every_script_survives_an_ascii_console(tmp_path, data_300):
    """Each script's main path with PYTHONIOENCODING=ascii (a Windows console writes cp1252):
    a plain fallback for → and ×, never a UnicodeEncodeError."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}

    def run(*args):
        done = subprocess.run([sys.executable, *map(str, args)], cwd=LAB, env=env,
                              capture_output=True, text=True, encoding="ascii", errors="replace",
                              check=False)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
        return done.stdout

    run("generate_icons.py", "--out", tmp_path / "d", "--n", 300, "--seed", 2)
    run("train.py", "--data", tmp_path / "d", "--out", tmp_path / "o", "--epochs", 1)
    out = run("eval.py", "--data", tmp_path / "d", "--checkpoint", tmp_path / "o" / "checkpoint.npz")
    assert "predicted ->" in out  # the arrow, plain
    run("eval.py", "--data", data_300, "--all", "--checkpoint", tmp_path / "o" / "checkpoint.npz")
    assert "total" in run("vit.py")
    run("sweep.py", "--plan")
    run("lessons.py", "--plan")


@pytest.mark.slow
def test_file_names_not_the_generators_train_and_evaluate(data, tmp_path):
    """Titles come from labels.json's ids: a file name the generator would not write is fine."""
    labels = json.loads((data / "labels.json").read_text())
    splits = json.loads((data / "splits.json").read_text())
    renamed = {lab["filename"]: f"icon{i}.png" for i, lab in enumerate(labels)}
    for lab in labels:
        (data / "icons" / lab["filename"]).rename(data / "icons" / renamed[lab["filename"]])
        lab["filename"] = renamed[lab["filename"]]
    splits = {s: {p: [renamed[f] for f in names] for p, names in parts.items()}
              for s, parts in splits.items()}
    (data / "labels.json").write_text(json.dumps(labels))
    (data / "splits.json").write_text(json.dumps(splits))
    train.main(["--data", str(data), "--out", str(tmp_path / "o"), "--epochs", "1"])
    evaluate_script.main(["--data", str(data), "--checkpoint", str(tmp_path / "o" /
                                                                    "checkpoint.npz")])
    assert evaluate_script.icon_title(labels[0]) == "work · infinitive · 1sg"
    assert (tmp_path / "o" / "mistakes.png").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="Windows does not delete a folder in use")
def test_a_current_folder_deleted_meanwhile(data_300, tmp_path, monkeypatch, capsys):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    train.main(["--data", str(data_300), "--out", str(tmp_path / "o"), "--epochs", "1"])
    out = capsys.readouterr().out
    assert f"to {tmp_path / 'o'}/" in out and (tmp_path / "o" / "checkpoint.npz").exists()


def test_a_seeds_plots_are_drawn_again_from_its_manifest(tmp_path, cli):
    """results/ keeps manifests; `sweep.py --plots FOLDER` draws a seed's training plots."""
    seed = shutil.copytree(LAB / "results" / "full_factorised" / "seed-1", tmp_path / "seed-1",
                           ignore=shutil.ignore_patterns("*.png", "*.npz"))
    sweep.main(["--plots", str(seed)])
    for png in ("loss.png", "accuracy.png", "diagnostics.png"):
        assert (seed / png).read_bytes()[:4] == b"\x89PNG"
    code, err = cli(sweep.main, "--plots", str(tmp_path))
    assert code == 2 and "no manifest.json there" in err


def test_per_epoch_records_are_written_by_columns_and_read_either_way():
    from minimodel.files import columns, dumps, rows

    history = [{"epoch": e, "train_loss": 1.0 / e, "val_accuracy": None,
                "grad_norm": {"embedding": 0.5 * e, "head": 2.0}} for e in (1, 2, 3)]
    packed = columns(history)
    assert packed["grad_norm"] == {"embedding": [0.5, 1.0, 1.5], "head": [2.0, 2.0, 2.0]}
    assert rows(packed) == history and rows(history) == history
    assert json.loads(dumps({"runs": {"x": {"per_epoch": packed}}}))["runs"]["x"][
        "per_epoch"] == packed
    assert '"epoch": [1, 2, 3]' in dumps(packed)  # a series on one line


def test_every_committed_manifest_holds_one_record_an_epoch():
    from minimodel.files import rows

    for path in sorted((LAB / "results").rglob("manifest.json")):
        for entry in json.loads(path.read_text())["runs"].values():
            epochs = rows(entry["per_epoch"])
            assert [e["epoch"] for e in epochs] == list(range(1, entry["recipe"]["epochs"] + 1))
