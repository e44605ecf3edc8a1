"""The training diagnostics measure what they say they measure."""

import json
import math

import numpy as np
import pytest
from conftest import SMOKE_RUNS, smoke_options

from minimodel import diagnostics
from minimodel.files import rows
from minimodel.parallel import DataParallel
from vit import TinyViT, ViTConfig, cross_entropy, tiny_config

rng = np.random.default_rng(0)


def test_gradient_norms_are_those_of_the_step():
    model = TinyViT(tiny_config(n_blocks=3))
    x, y = rng.uniform(-1, 1, (6, 8, 8, 3)).astype(np.float32), np.arange(6) % 3
    with DataParallel(model, cross_entropy) as parallel:
        parallel.train_step(x, y)
    norms = diagnostics.gradient_norms(model)
    assert list(norms) == ["embedding", "block 0", "block 1", "block 2", "head"]
    for i, block in enumerate(model.blocks):
        by_hand = np.linalg.norm(np.concatenate([g.ravel() for g in block.grads.values()]))
        assert norms[f"block {i}"] == pytest.approx(by_hand, rel=1e-5)
    head = [model.grads[k].ravel() for k in ("ln_gain", "ln_bias", "W_head", "b_head")]
    assert norms["head"] == pytest.approx(np.linalg.norm(np.concatenate(head)), rel=1e-5)
    before = model.flat_params.copy()
    model.flat_params -= 0.1 * model.flat_grads  # one plain gradient step
    ratios = diagnostics.update_ratios(model, before)
    emb = [model.params[k].ravel() for k in ("W_patch", "b_patch", "cls", "pos")]
    assert ratios["embedding"] == pytest.approx(
        0.1 * norms["embedding"] / np.linalg.norm(np.concatenate(emb)), rel=1e-5)


def test_uniform_attention_has_entropy_ln_65():
    assert diagnostics.attention_entropy(np.full((2, 4, 65, 65), 1 / 65)) == pytest.approx(
        math.log(65))
    assert diagnostics.attention_entropy(np.eye(65)[None]) == 0.0  # each query reads one token


def test_a_zero_head_attends_uniformly_at_init():
    """Zero q·k scores give uniform attention: with q and k weights zeroed, entropy is ln 65."""
    model = TinyViT(ViTConfig())
    for b in model.blocks:
        b.params["W_qkv"][:, :128] = 0
        b.params["b_qkv"][:128] = 0
    model.forward(rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32))
    ent = diagnostics.block_entropies(model)
    assert all(v == pytest.approx(math.log(65), rel=1e-5) for v in ent.values())


def test_logit_means_list_small_heads_and_summarise_large_ones():
    assert diagnostics.logit_means(np.array([[1.0, 2.0], [3.0, 4.0]])) == [2.0, 3.0]
    big = diagnostics.logit_means(np.arange(600.0).reshape(2, 300))
    assert big == {"min": 150.0, "median": 299.5, "max": 449.0}


@pytest.mark.slow
def test_every_task_records_its_diagnostics(trained):
    for options in [()] + [smoke_options(*run[:3]) for run in SMOKE_RUNS]:
        out = trained(*options)
        (entry,) = json.loads((out / "manifest.json").read_text())["runs"].values()
        for epoch in rows(entry["per_epoch"]):
            assert set(epoch["grad_norm"]) == set(epoch["update_ratio"]) == {
                "embedding", "block 0", "block 1", "block 2", "block 3", "head"}
            assert all(0 < v <= math.log(65) for v in epoch["attention_entropy"].values())
            assert epoch["val_logit_mean"]
        assert (out / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"
