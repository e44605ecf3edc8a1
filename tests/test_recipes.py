"""The levers a recipe can pull (label smoothing, AdamW, weight decay, warm-up, train+val), each
checked against its formula, and where a run's outputs go."""

import json

import numpy as np
import pytest
from conftest import snapshot
from gradcheck import TOL, numerical_grad, rel_error

import train
from vit import SGD, AdamW, TinyViT, cross_entropy, decay_mask, tiny_config

rng = np.random.default_rng(0)


@pytest.mark.parametrize("groups", [None, (3, 2, 2)])
def test_label_smoothing_loss_and_gradient(groups):
    """The loss is −Σ target·log softmax with target = (1 − ε)·onehot + ε/K (per group), and
    its gradient matches central differences."""
    B, eps = 4, 0.1
    sizes = groups or (7,)
    logits = rng.normal(size=(B, sum(sizes)))
    y = np.stack([rng.integers(0, k, B) for k in sizes], axis=1)
    y = y if groups else y[:, 0]
    loss, dlogits = cross_entropy(logits, y, groups, smoothing=eps)
    by_hand, start = 0.0, 0
    for i, k in enumerate(sizes):
        z = logits[:, start:start + k]
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        target = (1 - eps) * np.eye(k)[y[:, i] if groups else y] + eps / k
        by_hand += -(target * logp).sum(axis=1).mean()
        start += k
    assert loss == pytest.approx(by_hand, rel=1e-12)
    num = numerical_grad(lambda: cross_entropy(logits, y, groups, smoothing=eps)[0], logits)
    assert rel_error(dlogits, num) < TOL


def test_weight_decay_shrinks_only_the_weight_matrices():
    model = TinyViT(tiny_config())
    mask = decay_mask(model)
    decayed = {name for name, p, _ in model.named_parameters()
               if mask[model_slice(model, name)].all()}
    assert decayed == {"W_patch", "W_head"} | {f"blocks.{i}.{w}" for i in range(2)
                                                for w in ("W_qkv", "W_o", "W_1", "W_2")}
    assert mask.sum() == sum(p.size for name, p, _ in model.named_parameters() if p.ndim == 2)
    model.zero_grad()  # no gradient: SGD with decay only shrinks the matrices
    before = model.flat_params.copy()
    SGD(model, weight_decay=0.5).step(0.1)
    assert np.allclose(model.flat_params, before * (1 - 0.05 * mask))


def model_slice(model, name):
    start = 0
    for n, p, _ in model.named_parameters():
        if n == name:
            return slice(start, start + p.size)
        start += p.size


def test_adamw_steps_follow_the_formula():
    model = TinyViT(tiny_config())
    opt = AdamW(model, weight_decay=0.05)
    p0 = model.flat_params.astype(np.float64)
    g1, g2 = (rng.normal(size=p0.shape) for _ in range(2))
    for g in (g1, g2):
        model.flat_grads[:] = g
        opt.step(1e-2)
    m = 0.1 * 0.9 * g1 + 0.1 * g2  # two steps of the moments, by hand
    s = 0.001 * 0.999 * g1**2 + 0.001 * g2**2
    p1 = p0 - 1e-2 * (g1 / (np.abs(g1) + 1e-8) + 0.05 * decay_mask(model) * p0)
    m_hat, s_hat = m / (1 - 0.9**2), s / (1 - 0.999**2)
    p2 = p1 - 1e-2 * (m_hat / (np.sqrt(s_hat) + 1e-8) + 0.05 * decay_mask(model) * p1)
    assert np.allclose(model.flat_params, p2, atol=1e-6)


def test_warmup_then_cosine():
    assert train.cosine_lr(0, 100, 1e-3, warmup=10) == pytest.approx(1e-4)
    assert train.cosine_lr(9, 100, 1e-3, warmup=10) == pytest.approx(1e-3)
    assert train.cosine_lr(10, 100, 1e-3, warmup=10) == pytest.approx(1e-3)
    assert train.cosine_lr(55, 100, 1e-3, warmup=10) == pytest.approx(5e-4)
    assert 0 < train.cosine_lr(99, 100, 1e-3, warmup=10) < 1e-6
    for step in (0, 37, 99):  # no warm-up: the plain cosine
        assert train.cosine_lr(step, 100, 1e-3, 0) == train.cosine_lr(step, 100, 1e-3)


@pytest.mark.parametrize("args, needle", [
    (("--weight-decay", "-0.1"), "--weight-decay must be in [0, 1)"),
    (("--weight-decay", "nan"), "--weight-decay must be in [0, 1)"),
    (("--label-smoothing", "1"), "--label-smoothing must be in [0, 1)"),
    (("--warmup", "20"), "--warmup must be between 0 and --epochs - 1 (19)"),
    (("--warmup", "-1"), "--warmup must be between 0"),
    (("--optimizer", "adam"), "invalid choice: 'adam'"),
    (("--train-on", "test"), "invalid choice: 'test'"),
])
def test_lever_options_are_range_checked(cli, data, previous, args, needle):
    before = snapshot(previous)
    code, err = cli(train.main, "--data", data, "--out", previous, *args)
    assert code == 2 and needle in err, err
    assert snapshot(previous) == before


def test_experiments_go_to_runs_and_the_default_run_to_the_top_level(monkeypatch, data_60,
                                                                      tmp_path):
    monkeypatch.setattr(train, "LAB", tmp_path)
    monkeypatch.setattr(train, "DATA", data_60)
    assert train.parse_args([]).out == tmp_path  # the README's first command
    assert train.parse_args(["--epochs", "5"]).out == tmp_path / "runs" / "tense"
    assert train.parse_args(["--seed", "1", "--task", "full", "--head", "factorised"]).out == \
        tmp_path / "runs" / "full_factorised"
    assert train.parse_args(["--data", str(tmp_path)]).out == tmp_path / "runs" / "tense"
    assert str(train.parse_args(["--epochs", "5", "--out", str(tmp_path / "x")]).out) == \
        str(tmp_path / "x")


def test_training_on_train_and_validation(data_60, tmp_path, capsys):
    train.main(["--data", str(data_60), "--out", str(tmp_path), "--epochs", "2",
                "--train-on", "train+val", "--optimizer", "adamw", "--lr", "0.002",
                "--weight-decay", "0.05", "--label-smoothing", "0.1", "--warmup", "1"])
    entry = json.loads((tmp_path / "manifest.json").read_text())["runs"]["tense"]
    splits = json.loads((data_60 / "splits.json").read_text())["stratified"]
    assert entry["split_sizes"] == {"train": len(splits["train"]) + len(splits["val"]),
                                    "val": 0, "test": len(splits["test"])}
    assert entry["val_accuracy"] is None and entry["test_accuracy"] is not None
    assert entry["recipe"]["optimizer"] == "adamw" and entry["recipe"]["train_on"] == "train+val"
    assert "val acc    —" in capsys.readouterr().out
    for png in ("loss.png", "accuracy.png", "diagnostics.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
