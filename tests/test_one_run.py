"""Nothing a user or the lab made is replaced without a word (issue 40): a run folder holds one
run, the lab's committed files are written only by the commands that reproduce them, a run that
would not fit the machine's memory is refused, and an interrupt is one line at any moment.
Each situation is made for real, in a lab of its own in a temporary folder."""

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from conftest import snapshot

import eval as evaluate_script
import generate_icons as gi
import sweep
import train
from minimodel import files, grid, memory, recipes
from minimodel.data import load_dataset
from vit import ViTConfig, n_parameters

LAB = Path(__file__).parents[1]
SHORT = {**recipes.SPEC, "epochs": 1}  # the lab's run, one epoch: seconds, not minutes


def as_lab(monkeypatch, lab):
    """The scripts as if `lab` were the lab's folder, its data/ the lab's icons, and the spec's
    recipe one epoch long."""
    for module in (train, evaluate_script, gi, sweep):
        monkeypatch.setattr(module, "LAB", lab)
    for module in (train, evaluate_script, gi):
        monkeypatch.setattr(module, "DATA", lab / "data")
    monkeypatch.setattr(train, "SPEC", SHORT)
    monkeypatch.setattr(train, "recipe", lambda run, which="chosen": {
        **recipes.recipe(run, which), "epochs": 1})


@pytest.fixture(scope="session")
def lab_template(data_300, tmp_path_factory):
    """A lab whose committed files are made by its own first command (train.py, eval.py with
    their defaults) on 300 icons, and a patch-8 run trained and scored in runs/."""
    lab = tmp_path_factory.mktemp("lab")
    shutil.copytree(data_300, lab / "data")
    with pytest.MonkeyPatch.context() as mp:
        as_lab(mp, lab)
        train.main([])
        evaluate_script.main([])
        train.main(["--patch-size", "8"])
        evaluate_script.main(["--checkpoint", str(lab / "runs" / "tense-patch8" / "checkpoint.npz")])
    return lab


@pytest.fixture
def lab(lab_template, tmp_path, monkeypatch):
    lab = shutil.copytree(lab_template, tmp_path / "lab")
    as_lab(monkeypatch, lab)
    return lab


def everything(folder):
    """Every file under `folder` and its SHA-256: what must stay byte for byte."""
    return {p.relative_to(folder).as_posix(): h for sub in [folder, *folder.rglob("*")]
            if sub.is_dir() for p, h in ((sub / n, d) for n, d in snapshot(sub).items())}


def one_line(cli, main, *argv, code=2):
    status, err = cli(main, *argv)
    assert status == code and err.startswith("error: ") and err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------- a run folder holds one run


def test_another_seed_goes_to_its_own_folder_and_keeps_the_first(lab, capsys):
    first = lab / "runs" / "tense-patch8"
    before = everything(first)
    train.main(["--patch-size", "8", "--seed", "2"])
    assert everything(first) == before  # seed 0's run, scored, byte for byte
    second = lab / "runs" / "tense-patch8-seed2"
    entry = json.loads((second / "manifest.json").read_text())["runs"]["tense-patch8"]
    assert entry["recipe"]["seed"] == 2 and "eval" not in entry
    assert not (second / "confusion_matrix.png").exists()
    assert "/lab/runs/tense-patch8-seed2/" in capsys.readouterr().out.replace(os.sep, "/")


def test_a_folder_holding_another_run_is_refused_naming_the_difference(lab, cli):
    first = lab / "runs" / "tense-patch8"
    before = everything(first)
    err = one_line(cli, train.main, "--patch-size", "8", "--epochs", "2", "--out", first)
    assert "holds another run of tense-patch8 (epochs 1; this one: epochs 2)" in err
    assert "keep both with --out" in err and "tense-patch8-epochs2" in err
    assert "or replace it with --replace" in err
    other = lab / "data2"  # the same command on other icons is another run too
    gi.generate(other, n=300, seed=5)
    err = one_line(cli, train.main, "--patch-size", "8", "--data", other, "--out", first)
    assert "dataset" in err and "data-data2" in err
    (first / "manifest.json").unlink()  # a checkpoint no entry describes
    err = one_line(cli, train.main, "--patch-size", "8")
    assert "a checkpoint.npz that no manifest.json entry describes" in err
    assert everything(first) == {k: v for k, v in before.items() if k != "manifest.json"}


@pytest.mark.slow
def test_the_same_command_again_replaces_its_run_and_says_so(lab, capsys, monkeypatch):
    """At the top level too: the lab's own run, again, keeps its evaluation, whose figures are
    the same weights'."""
    figures = {f: (lab / f).read_bytes() for f in files.EVAL_FIGURES if (lab / f).exists()}
    evaluation = json.loads((lab / "manifest.json").read_text())["runs"]["tense"]["eval"]
    monkeypatch.chdir(lab)
    train.main([])
    assert "replacing the earlier run tense in ./ (the same settings and training code, so " \
           "the same weights: its evaluation is kept)" in capsys.readouterr().out
    assert {f: (lab / f).read_bytes() for f in files.EVAL_FIGURES if (lab / f).exists()} == \
        figures
    assert json.loads((lab / "manifest.json").read_text())["runs"]["tense"]["eval"] == evaluation


@pytest.mark.slow
def test_replace_replaces_the_whole_run_and_its_evaluation(lab, capsys, monkeypatch):
    folder = lab / "runs" / "tense-patch8"
    (folder / "manifest.json").write_text(json.dumps({"runs": {
        **json.loads((folder / "manifest.json").read_text())["runs"], "mine": {}}}))
    train.main(["--patch-size", "8", "--seed", "3", "--out", str(folder), "--replace"])
    assert "replacing the runs tense-patch8, mine in" in capsys.readouterr().out
    runs = json.loads((folder / "manifest.json").read_text())["runs"]
    assert list(runs) == ["tense-patch8"] and runs["tense-patch8"]["recipe"]["seed"] == 3
    assert not [f for f in files.EVAL_FIGURES if (folder / f).exists()]  # seed 0's, gone
    # the same run by other training code: replaced, its evaluation removed with it
    evaluate_script.main(["--checkpoint", str(folder / "checkpoint.npz")])
    monkeypatch.setattr(train, "same_code", lambda lab: {"another code"})
    train.main(["--patch-size", "8", "--seed", "3", "--out", str(folder)])
    assert "other training code: its evaluation goes with it" in capsys.readouterr().out
    assert not [f for f in files.EVAL_FIGURES if (folder / f).exists()]


def test_eval_writes_the_figures_a_replaced_run_takes_with_it(lab):
    """EVAL_FIGURES, which train.py removes with the checkpoint they scored, are what eval.py
    writes beside the training's plots."""
    pngs = {f for f in snapshot(lab / "runs" / "tense-patch8") if f.endswith(".png")}
    assert pngs | {"cls_heads.png"} == {"loss.png", "accuracy.png", "diagnostics.png",
                                        *files.EVAL_FIGURES}  # (cls_heads.png: with --heads)


# ---------------------------------------------------------------- the lab's committed files


def test_the_labs_files_are_written_only_by_the_commands_that_make_them(lab, cli, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(lab)
    before = everything(lab)
    # generate_icons.py --seed 1, --out forgotten
    err = one_line(cli, gi.main, "--seed", "1")
    assert "holds the lab's committed icons (seed 0, 1000 icons)" in err and "--out" in err
    one_line(cli, gi.main, "--n", "300")
    err = one_line(cli, gi.main, "--out", lab / "results" / "mine")
    assert "in results/, which holds the lab's committed files" in err
    err = one_line(cli, gi.main, "--out", tmp_path / "fresh", "--manifest", lab / "manifest.json")
    assert "--manifest" in err and "in the lab's top level" in err
    # train.py: another run at the top level, or in data/
    err = one_line(cli, train.main, "--epochs", "3", "--out", lab)
    assert "which only the default run writes; leave out --out and this run goes to runs" in err
    one_line(cli, train.main, "--out", lab / "data" / "x")
    # eval.py: a patch-8 model's checkpoint copied to the top level, beside the lab's or over it
    patch8 = lab / "runs" / "tense-patch8" / "checkpoint.npz"
    shutil.copyfile(patch8, lab / "mine.npz")
    err = one_line(cli, evaluate_script.main, "--checkpoint", lab / "mine.npz")
    assert "mine.npz: not the checkpoint of the run in ./ (tense)" in err
    assert err.endswith("send its outputs elsewhere with --out " + os.path.join("runs", "mine")
                        + "\n")
    (lab / "mine.npz").unlink()
    labs = (lab / "checkpoint.npz").read_bytes()
    shutil.copyfile(patch8, lab / "checkpoint.npz")
    err = one_line(cli, evaluate_script.main)
    assert "not the checkpoint of the run in ./ (tense)" in err
    (lab / "checkpoint.npz").write_bytes(labs)
    err = one_line(cli, evaluate_script.main, "--checkpoint", patch8, "--all", "--out", lab)
    assert "the lab's top level holds the lab's committed results" in err
    # sweep.py --plots on the top level
    err = one_line(cli, sweep.main, "--plots", lab)
    assert "train.py draws step by step" in err
    assert everything(lab) == before


def test_replace_never_replaces_the_labs_results(lab, cli, trained, data_300):
    seed = shutil.copytree(trained(), lab / "results" / "tense" / "seed-0")
    before = everything(seed)
    err = one_line(cli, train.main, "--data", data_300, "--out", seed, "--epochs", "2",
                   "--replace")
    assert "holds another run of tense (epochs 1; this one: epochs 2)" in err
    assert "(results/ holds the lab's committed results, which --replace never replaces)" in err
    assert everything(seed) == before


def test_fresh_scores_in_results_are_not_replaced_by_other_icons(lab, cli, trained, data_60,
                                                                  capsys):
    seed = shutil.copytree(trained(), lab / "results" / "tense" / "seed-0")
    manifest = json.loads((seed / "manifest.json").read_text())
    manifest["runs"]["tense"]["eval_all"] = {"folder": "runs/sweep-data/fresh-seed1",
                                             "fingerprint": "1" * 64, "accuracy": 0.9}
    (seed / "manifest.json").write_text(json.dumps(manifest))
    before = everything(seed)
    err = one_line(cli, evaluate_script.main, "--checkpoint", seed / "checkpoint.npz", "--data",
                   data_60, "--all")
    assert "holds this run's scores on other icons (runs/sweep-data/fresh-seed1)" in err
    assert everything(seed) == before
    mine = shutil.copytree(seed, lab / "runs" / "mine")  # a user's own folder: said, replaced
    evaluate_script.main(["--checkpoint", str(mine / "checkpoint.npz"), "--data", str(data_60),
                          "--all"])
    assert "replacing this run's scores on runs/sweep-data/fresh-seed1 (other icons)" in \
        capsys.readouterr().out


# ---------------------------------------------------------------- done, on the same icons


def test_a_sweep_of_other_icons_counts_nothing_done_and_writes_under_runs(data_60, monkeypatch,
                                                                          capsys):
    for name in ("RESULTS", "SELECTION", "SELECT_RUNS"):  # (main moves them for other icons)
        monkeypatch.setattr(sweep, name, getattr(sweep, name))
    monkeypatch.setattr(sweep, "same_code", lambda lab: {
        e["environment"]["training_code"] for p in (LAB / "results" / "tense").glob("*/manifest.json")
        for e in json.loads(p.read_text())["runs"].values()})  # the committed seeds: this code
    before = everything(LAB / "results")
    sweep.main(["--plan", "--runs", "tense"])  # the lab's icons: its committed seeds are done
    assert "# 0 trainings to do" in capsys.readouterr().out
    sweep.main(["--data", str(data_60), "--plan", "--runs", "tense"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "drawing" not in line]
    assert lines[0].startswith("# these icons are not the lab's data/: their results go to runs")
    assert lines[1].startswith("# 5 trainings to do")
    assert all("--out runs" in line.replace(os.sep, "/") for line in lines[3:])
    assert everything(LAB / "results") == before


def test_done_compares_the_icons_trained_and_scored_on(tmp_path):
    seed = tmp_path / "seed-0"
    seed.mkdir()
    entry = {"recipe": {"epochs": 1}, "environment": {"training_code": "c"}, "eval": {},
             "dataset": {"fingerprint": "a" * 64}, "eval_all": {"fingerprint": "f" * 64}}
    (seed / "manifest.json").write_text(json.dumps({"runs": {"tense": entry}}))
    icons = {"train": "a" * 64, "fresh": "f" * 64}
    assert sweep.done_by_this_code(seed, "tense", {"epochs": 1}, {"c"}, icons)
    with pytest.raises(files.LabError, match=r"trained on other icons \(aaaaaaaa…\) than this "
                                             r"grid's \(bbbbbbbb…\).*delete"):
        sweep.done_by_this_code(seed, "tense", {"epochs": 1}, {"c"}, {**icons, "train": "b" * 64})
    with pytest.raises(files.LabError, match=r"scored on other icons"):
        sweep.done_by_this_code(seed, "tense", {"epochs": 1}, {"c"}, {**icons, "fresh": "e" * 64})


def test_icons_a_grid_has_not_drawn_yet_have_the_fingerprint_they_will_have(tmp_path, data_300):
    assert sweep.fingerprint_of(tmp_path / "not-yet", 300, 0) == load_dataset(data_300).fingerprint


# ---------------------------------------------------------------- memory


def test_a_run_past_the_machines_memory_is_refused_before_anything_is_built(
        cli, data_60, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda: 500 * 2**20)  # 500 MB free
    monkeypatch.setattr(train, "TinyViT", None)  # were it built: a TypeError, no one line
    err = one_line(cli, train.main, "--data", data_60, "--out", tmp_path / "o", "--patch-size",
                   "2", "--batch-size", "4096")
    cfg = ViTConfig(patch_size=2)
    need = memory.training_peak(cfg, 42, 60, n_parameters(cfg))
    assert f"this run would need about {memory.gigabytes(need)} of memory at its peak (257 " \
           "tokens, 42 icons a step), more than the 600 MB this machine has for it; lower " \
           "--batch-size (at most " in err
    fits = int(err.split("at most ")[1].split()[0])
    room = (500 + 100) * 2**20 + 60 * 32 * 32 * 3
    assert 1 <= fits < 42 and memory.training_peak(cfg, fits, 60, n_parameters(cfg)) <= room \
        < memory.training_peak(cfg, fits + 1, 60, n_parameters(cfg))
    assert not list((tmp_path / "o").iterdir())


def test_a_machine_that_does_not_say_its_memory_is_not_checked(data_60, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.setattr(memory, "free_memory", lambda: None)
    train.main(["--data", str(data_60), "--out", str(tmp_path), "--epochs", "1"])
    assert "does not say how much memory is free" in capsys.readouterr().out


def test_the_estimate_grows_with_the_batch_and_the_tokens_and_memory_is_read():
    def peak(patch, batch):
        cfg = ViTConfig(patch_size=patch)
        return memory.training_peak(cfg, batch, 1000, n_parameters(cfg))

    assert peak(2, 512) > 4 * peak(4, 512) > 4 * peak(8, 512) and peak(2, 512) > 8 * peak(2, 32)
    assert 5 * 2**30 < peak(2, 512) < 7 * 2**30  # measured: 5.5 GB (docs/engineering.md)
    assert peak(4, 32) < 300 * 2**20  # the lab's own run, on a laptop
    assert memory.largest_batch(lambda b: b <= 37, 4096) == 37
    assert memory.largest_batch(lambda b: False, 32) == 0
    free = memory.free_memory()
    assert free is None or free > 2**20


def test_free_memory_is_read_where_the_os_tells_it(tmp_path, monkeypatch):
    """Linux: MemAvailable, or a cgroup's limit less its use (v2, or v1's memory controller);
    macOS: the physical memory (sysctl); elsewhere None, and the run is not checked."""
    proc, cgroups = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal:  8000000 kB\nMemAvailable:  6000000 kB\n")
    (proc / "self" / "cgroup").write_text("0::/job\n")
    assert memory._linux(proc, cgroups) == 6000000 * 1024  # no such cgroup files: no limit
    (cgroups / "job").mkdir(parents=True)
    (cgroups / "job" / "memory.max").write_text("max\n")
    assert memory._linux(proc, cgroups) == 6000000 * 1024
    (cgroups / "job" / "memory.max").write_text(f"{4 * 2**30}\n")
    (cgroups / "job" / "memory.current").write_text(f"{2**30}\n")
    assert memory._linux(proc, cgroups) == 3 * 2**30  # a container of 4 GB using 1
    (proc / "self" / "cgroup").write_text("4:memory:/slurm/job1\n1:cpu:/\n")
    v1 = cgroups / "memory" / "slurm" / "job1"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(f"{2 * 2**30}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{2**29}\n")
    assert memory._linux(proc, cgroups) == 3 * 2**29
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(memory.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout="17179869184\n"))
    assert memory.free_memory() == 16 * 2**30
    monkeypatch.setattr(memory.sys, "platform", "plan9")
    monkeypatch.delattr(memory.os, "sysconf", raising=False)
    assert memory.free_memory() is None


@pytest.mark.slow
@pytest.mark.parametrize("patch", [8, 4, 2])
def test_the_estimate_against_the_arrays_a_training_allocates(data_300, tmp_path, monkeypatch,
                                                              patch):
    """tracemalloc sees every NumPy array: their peak while training.train runs (its steps and
    evaluations, the icons and parameters already there) against the estimate without the
    interpreter's BASE. (GNU time's peaks of whole runs: docs/engineering.md.)"""
    peak, real = [], train.train

    def traced(*args, **kwargs):
        tracemalloc.reset_peak()
        history = real(*args, **kwargs)
        peak.append(tracemalloc.get_traced_memory()[1])
        return history

    monkeypatch.setattr(train, "train", traced)
    args = train.parse_args(["--data", str(data_300), "--out", str(tmp_path), "--epochs", "1",
                             "--patch-size", str(patch), "--batch-size", "64"])
    tracemalloc.start()
    try:
        train.run(args, log=lambda *a: None)
    finally:
        tracemalloc.stop()
    estimate = memory.training_peak(args.config, 64, 300, n_parameters(args.config))
    assert 0.95 * peak[0] <= estimate - memory.BASE <= 1.3 * peak[0], (peak, estimate)


# ---------------------------------------------------------------- one line per interrupt


# a Python that starts a script as the shell would, SIGINT at Python's own handler (a job
# started in the background inherits it ignored)
AS_A_PROGRAM = ("import os, runpy, signal, sys\n"
                "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
                "sys.argv = sys.argv[1:]\n"
                "sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as `python script.py` does\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")


@pytest.mark.parametrize("script", ["train.py", "eval.py", "generate_icons.py", "sweep.py"])
def test_ctrl_c_while_numpy_loads_is_one_line(tmp_path, script):
    """A NumPy that interrupts its own import stands for Ctrl-C pressed while it loads."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text(
        "import signal\nsignal.raise_signal(signal.SIGINT)\nraise ImportError('went on')\n")
    env = {k: v for k, v in os.environ.items() if k != "MINIMODEL_IN_GRID"}
    done = subprocess.run([sys.executable, "-c", AS_A_PROGRAM, str(LAB / script)], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted: files from before this run are as they were\n"


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="a terminal's Ctrl-C: a process group")
def test_an_interrupted_sweep_says_so_once(tmp_path):
    """Ctrl-C reaches a sweep and its training at once (the terminal's process group): one line,
    the sweep's, however many of its children it stopped."""
    child = tmp_path / "child.py"
    child.write_text("import os, signal, time\nfrom minimodel.start import quiet_start\n"
                     "quiet_start(__name__)\nfrom minimodel.files import run_cli\n"
                     "def main(argv):\n"
                     "    os.killpg(0, signal.SIGINT)  # Ctrl-C, to the whole group\n"
                     "    time.sleep(60)\n"
                     "run_cli(main)\n")
    parent = ("import signal, sys\nfrom pathlib import Path\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from minimodel.start import quiet_start\nquiet_start('__main__')\n"
              "from minimodel import grid\nfrom minimodel.files import run_cli\n"
              "run_cli(lambda argv: grid.run_all([grid.Training('x', [[sys.argv[1]]]), "
              "grid.Training('y', [[sys.argv[1]]])], Path(sys.argv[2])))\n")
    done = subprocess.run([sys.executable, "-c", parent, str(child), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, start_new_session=True,
                          check=False)
    assert done.returncode == 130
    assert done.stderr == ("interrupted: 0 of 2 trainings finished and saved; one cut short "
                           "saved all of its files or none; the same command resumes\n")


def test_a_grids_children_leave_the_line_to_it():
    assert grid.child_env(3)["MINIMODEL_CORES"] == "3"
    assert grid.child_env()["MINIMODEL_IN_GRID"] == "1"
    assert grid.child_env().get("MINIMODEL_CORES") == os.environ.get("MINIMODEL_CORES")
