"""The model's settings and each run's recipe on train.py's command line: what they build, where
the run goes, what they refuse, and figures that follow the config (issue: a lab to experiment
with)."""

import json

import numpy as np
import pytest
from conftest import snapshot

import eval as evaluate_script
import train
from minimodel import recipes
from vit import TinyViT, ViTConfig


@pytest.fixture
def lab(monkeypatch, data_60, tmp_path):
    """train.py as if the lab's top level were tmp_path and its data data_60."""
    monkeypatch.setattr(train, "LAB", tmp_path)
    monkeypatch.setattr(train, "DATA", data_60)
    return tmp_path


def test_each_run_trains_its_chosen_recipe_unless_told(lab):
    args = train.parse_args(["--task", "tense_person"])
    assert (args.epochs, args.lr, args.shift) == (100, 0.05, 2) == tuple(
        recipes.CHOSEN["tense_person"][k] for k in ("epochs", "lr", "shift"))
    args = train.parse_args(["--task", "tense_person", "--recipe", "spec"])
    assert (args.epochs, args.lr, args.shift, args.batch_size) == (20, 1e-3, 0, 32)
    args = train.parse_args(["--task", "full", "--head", "factorised", "--epochs", "7"])
    assert (args.epochs, args.lr, args.shift) == (7, 0.05, 2)  # an option beats the recipe
    assert train.parse_args([]).epochs == 20  # the tense run's chosen recipe is the spec's


def test_only_the_default_run_writes_the_lab_figures(lab):
    assert train.parse_args([]).out == lab
    assert train.parse_args(["--recipe", "spec", "--epochs", "20"]).out == lab  # the same run
    runs = lab / "runs"
    assert train.parse_args(["--patch-size", "8"]).out == runs / "tense-patch8"
    assert train.parse_args(["--position", "none", "--pool", "mean"]).out == \
        runs / "tense-position-none-pool-mean"
    assert train.parse_args(["--task", "full", "--head", "factorised", "--blocks", "1"]).out == \
        runs / "full_factorised-blocks1"
    assert train.parse_args(["--width", "64"]).out == lab  # the default width


@pytest.mark.parametrize("args, needle", [
    (("--patch-size", "5"), "image_size=32 is not a multiple of --patch-size 5"),
    (("--width", "30"), "--width 30 is not a multiple of --heads 4; choose other model options"),
    (("--attention", "self"), "--attention self lets no patch reach [CLS]; use --pool mean"),
    (("--patch-size", "1"), "a model of 1025 tokens"),
    (("--dropout", "1"), "--dropout 1.0 must be a number in [0, 1)"),
    (("--blocks", "0"), "--blocks 0 must be a positive integer"),
    (("--pool", "max"), "invalid choice: 'max'"),
])
def test_models_that_cannot_be_built_are_refused(cli, data, previous, args, needle):
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, *args)
    assert code == 2 and needle in err, err
    if "invalid choice" not in needle:  # (argparse's own refusals come with its usage)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert snapshot(previous) == before


@pytest.mark.slow
@pytest.mark.parametrize("options, name, n_tokens", [
    (("--patch-size", "8"), "tense-patch8", 17),
    (("--position", "none"), "tense-position-none", 65),
    (("--pool", "mean"), "tense-pool-mean", 64),
    (("--blocks", "1"), "tense-blocks1", 65),
    (("--pool", "mean", "--attention", "self"), "tense-pool-mean-attention-self", 64)])
def test_another_model_trains_into_runs_and_evaluates_without_flags(lab, options, name,
                                                                    n_tokens, capsys):
    train.main([*options, "--epochs", "1"])
    out = lab / "runs" / name
    assert f"to {out}" in capsys.readouterr().out or (out / "checkpoint.npz").exists()
    model, meta = TinyViT.load(out / "checkpoint.npz")
    assert model.cfg.n_tokens == n_tokens and meta["run"] == name
    evaluate_script.main(["--checkpoint", str(out / "checkpoint.npz"),
                          "--data", str(train.DATA)])
    entry = json.loads((out / "manifest.json").read_text())["runs"][name]
    assert entry["config"] == {**entry["config"], **model.cfg.__dict__}
    assert 0 <= entry["eval"]["test_accuracy"] <= 1
    assert (out / "cls_attention.png").read_bytes()[:4] == b"\x89PNG"
    assert not (lab / "manifest.json").exists()  # the lab's own files untouched


@pytest.mark.parametrize("patch, grid", [(2, 16), (4, 8), (8, 4)])
def test_the_attention_figure_follows_the_patch_size(data_60, patch, grid):
    """cls_attention.png's grid, patch size and uniform level come from the model's config."""
    from minimodel.data import load_dataset

    model = TinyViT(ViTConfig(patch_size=patch))
    dataset = load_dataset(data_60)
    fig = evaluate_script.attention_figure(model, dataset.images, dataset.labels)
    title = fig._suptitle.get_text()
    assert f"({grid}×{grid} patches of {patch}×{patch} pixels)" in title
    bar = fig.axes[-1].get_ylabel()
    assert f"uniform (1/{grid * grid + 1})" in bar and "[CLS]'s attention" in bar
    maps = [ax.get_images()[0].get_array() for ax in fig.axes[1:-1:3]]
    assert all(np.shape(m) == (grid, grid) for m in maps)


def test_manifests_record_commands_as_typed_in_the_lab(monkeypatch, tmp_path):
    """Paths inside the lab are recorded relative to it, whatever the machine's folders."""
    monkeypatch.setattr(train, "LAB", tmp_path)
    assert train.typed(str(tmp_path / "runs" / "x")) == "runs/x"
    assert train.typed("--seed") == "--seed" and train.typed("runs/x") == "runs/x"
    outside = str(tmp_path.parent / "elsewhere")
    assert train.typed(outside) == outside
