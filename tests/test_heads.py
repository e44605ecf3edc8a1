"""Attention head by head: the attention lesson's measure, eval.py --heads and the lessons'
figure of it (one function draws both)."""

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import snapshot

import eval as evaluate_script
import generate_icons as gi
import lessons
from vit import TinyViT, ViTConfig, to_inputs


class Looking:
    """A stand-in model of 2 blocks of 2 heads whose [CLS] attends uniformly everywhere but in
    block 1, head 0, which reads the outline's patches only."""

    def __init__(self, images, region):
        self.cfg = ViTConfig(n_blocks=2, n_heads=2)
        self.blocks = [SimpleNamespace(), SimpleNamespace()]
        self.region = {x.tobytes(): r for x, r in zip(to_inputs(images), region)}

    def forward(self, x):
        r = np.array([self.region[icon.tobytes()] for icon in x])  # (B, N)
        for block in self.blocks:
            block.att = np.full((len(x), 2, 1, 65), 1 / 65)  # (B, H, [CLS]'s row, T)
        outline = (r == 1).astype(float)
        self.blocks[1].att[:, 0, 0, 1:] = outline / outline.sum(axis=1, keepdims=True)


def test_the_measure_finds_the_head_that_reads_the_outline_and_the_figure_draws_it():
    images, labels = gi.render_dataset(300, 1)
    region = evaluate_script.regions(ViTConfig(), n=300)
    model = Looking(images, region)
    ratios, counted = evaluate_script.head_focus(model, images, region)
    assert counted == {"background": 300, "outline": 300, "inside": 300}
    assert ratios["outline"][0] == ratios["inside"][0] == [1.0, 1.0]  # uniform = 1
    assert ratios["outline"][1][0] > 3 and ratios["inside"][1][0] == 0
    assert ratios["background"][1][0] == 0 and ratios["inside"][1][1] == 1.0
    fig = evaluate_script.heads_figure([("looking", model, ratios)], images, labels)
    titles = [ax.get_title() for ax in fig.axes[1:3]]
    assert "most outline-bound\nblock 1, head 0" in titles[0]  # the outline head, found
    assert "most inside-bound\nblock 0, head 0" in titles[1]  # (all tie at 1×: the first)
    picked = [ax.get_title() for ax in fig.axes[0:15:3]]  # the icons' column
    assert len({t.split(" · ")[1] for t in picked}) == 5  # one icon per tense ...
    assert len({t.split(" · ")[2][:3] for t in picked}) == 3  # ... and every person


@pytest.mark.slow
def test_eval_heads_draws_the_heads_of_a_small_model(data_300, trained, tmp_path, capsys):
    out = shutil.copytree(trained(), tmp_path / "run")
    evaluate_script.main(["--data", str(data_300), "--checkpoint", str(out / "checkpoint.npz"),
                          "--heads"])
    assert (out / "cls_heads.png").read_bytes()[:4] == b"\x89PNG"
    assert "cls_attention.png, cls_heads.png and the run's entry" in capsys.readouterr().out


def test_eval_heads_help_and_refusals(cli, data_300, previous, tmp_path, capsys):
    """--help says what --heads draws; --heads with --all, or on a model without [CLS], is
    refused in one line before any work, nothing written."""
    with pytest.raises(SystemExit):
        evaluate_script.main(["--help"])
    assert "also draw cls_heads.png: [CLS]'s attention" in " ".join(capsys.readouterr().out.split())
    before = snapshot(previous)
    code, err = cli(evaluate_script.main, "--checkpoint", previous / "checkpoint.npz", "--data",
                    data_300, "--all", "--heads")
    assert code == 2 and "--heads draws a figure and --all draws none" in err, err
    mean = tmp_path / "mean"
    mean.mkdir()
    TinyViT(ViTConfig(pool="mean")).save(mean / "checkpoint.npz",
                                         meta={"task": "tense", "run": "tense"})
    code, err = cli(evaluate_script.main, "--checkpoint", mean / "checkpoint.npz", "--data",
                    data_300, "--heads")
    assert code == 2 and err.count("\n") == 1 and "has no [CLS]" in err and "drop --heads" in err
    assert snapshot(previous) == before and [p.name for p in mean.iterdir()] == ["checkpoint.npz"]


@pytest.mark.slow
def test_the_summary_keeps_the_heads_figure_without_the_models_it_shows(monkeypatch, tmp_path,
                                                                        capsys):
    """A clean clone has no checkpoints (never committed): the committed figure stays, with a
    line saying why; a checkpoint other than the model inspect.json measured is not drawn."""
    inside = lessons.inspected()
    monkeypatch.setattr(lessons, "RESULTS", tmp_path)
    figure = tmp_path / "cls_heads.png"
    figure.write_bytes(b"as committed")
    lessons.heads_figure(inside, figure)
    assert "checkpoint.npz is not here" in capsys.readouterr().out
    for run in lessons.HEAD_RUNS:
        (tmp_path / "inside" / run).mkdir(parents=True)
        TinyViT(ViTConfig()).save(tmp_path / "inside" / run / "checkpoint.npz", meta={})
    lessons.heads_figure(inside, figure)
    assert "is not the model its inspect.json measured" in capsys.readouterr().out
    assert figure.read_bytes() == b"as committed"
