"""TinyViT: shapes, patchify, a gradient check of every tensor, dropout, checkpoints."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from gradcheck import TOL, numerical_grad, rel_error

import vit
from minimodel import bench
from minimodel.parallel import DataParallel
from minimodel.transformer import block as phase17
from vit import TinyViT, ViTConfig, cross_entropy, patchify, tiny_config, unpatchify

rng = np.random.default_rng(0)
B = 3


def images(cfg, n=B):
    return rng.uniform(-1, 1, (n, cfg.image_size, cfg.image_size, 3)).astype(np.float32)


def randomise(model, scale=0.3):
    """Move every tensor off its init (zero head, unit gains) so no gradient is trivially zero."""
    for _, p, _ in model.named_parameters():
        p += (rng.normal(size=p.shape) * scale).astype(p.dtype)


# ---------------------------------------------------------------- the spec's five


def test_patchify_shape():
    assert patchify(images(ViTConfig()), 4).shape == (B, 64, 48)


def test_cls_is_prepended():
    model = TinyViT(ViTConfig())
    x = model.embed(images(model.cfg))
    assert x.shape == (B, 65, 64)
    p = model.params
    assert np.allclose(x[:, 0], p["cls"][0, 0] + p["pos"][0, 0])  # token 0 is [CLS], same for all


def test_position_embedding_shape_and_broadcast():
    model = TinyViT(ViTConfig())
    assert model.params["pos"].shape == (1, 65, 64)
    xs = images(model.cfg)
    before = model.embed(xs)
    model.params["pos"][0, 7, 3] += 1.0
    delta = model.embed(xs) - before
    assert np.allclose(delta[:, 7, 3], 1.0)  # every image of the batch got it
    assert np.count_nonzero(np.abs(delta) > 1e-6) == B  # and nothing else moved


@pytest.mark.parametrize("n_classes", [5, 15, 300])
def test_forward_shape(n_classes):
    model = TinyViT(ViTConfig(n_classes=n_classes))
    assert model.forward(images(model.cfg)).shape == (B, n_classes)
    assert model.encode(images(model.cfg)).shape == (B, 64)  # the features the next lab uses


def test_gradient_sanity_full_config():
    model = TinyViT(ViTConfig())
    y = np.array([0, 1, 4])
    loss, dlogits = cross_entropy(model.forward(images(model.cfg), train=True), y)
    assert loss == pytest.approx(math.log(5), abs=1e-6)  # zero head: uniform prediction
    randomise(model, 0.05)
    loss, dlogits = cross_entropy(model.forward(images(model.cfg), train=True), y)
    model.zero_grad()
    model.backward(dlogits)
    for name, p, g in model.named_parameters():
        assert g.shape == p.shape and g.dtype == np.float32, name
        assert np.isfinite(g).all() and np.abs(g).max() > 0, f"{name}: no gradient"


# ---------------------------------------------------------------- patchify


def test_patchify_matches_explicit_slices():
    x = images(ViTConfig())
    patches = patchify(x, 4)
    for p in (0, 1, 8, 27, 63):
        i, j = divmod(p, 8)  # patch p = 8·i + j: row block i, column block j
        assert np.array_equal(patches[:, p], x[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4].reshape(B, 48))
    assert np.array_equal(unpatchify(patches, 4, 32), x)


# ---------------------------------------------------------------- gradient check


SWITCHED = [{"position": "none"}, {"pool": "mean"}, {"pool": "mean", "attention": "self"}]


@pytest.mark.parametrize("primitives, switches", [
    ("reference", {}), pytest.param("tuned", {}, marks=pytest.mark.slow),  # (tuned = reference)
    *(("reference", s) for s in SWITCHED)])
def test_every_gradient_of_the_whole_model(primitives, switches):
    """Float64 central differences on every entry of every tensor, and of the input; also with
    each of the config's switches, which change which tensors there are."""
    model = TinyViT(tiny_config(**switches), dtype=np.float64, primitives=primitives)
    randomise(model)
    x = rng.uniform(-1, 1, (2, 8, 8, 3))
    R = rng.normal(size=(2, model.cfg.n_classes))

    def loss():
        return float((model.forward(x, train=True) * R).sum())  # dropout is 0 in tiny_config

    loss()
    model.zero_grad()
    dx = model.backward(R)
    assert rel_error(dx, numerical_grad(loss, x)) < TOL, "input"
    names = []
    for name, p, g in model.named_parameters():
        err = rel_error(g, numerical_grad(loss, p))
        assert err < TOL, f"{name}: relative error {err:.1e}"
        names.append(name)
    assert len(names) == 8 - len(switches.keys() & {"position", "pool"}) + \
        12 * model.cfg.n_blocks  # no tensor skipped


def test_cross_entropy_gradient():
    logits = rng.normal(size=(4, 5))
    y = np.array([0, 3, 4, 3])
    _, d = cross_entropy(logits, y)
    assert rel_error(d, numerical_grad(lambda: cross_entropy(logits, y)[0], logits)) < TOL


# ---------------------------------------------------------------- dropout


def test_dropout_only_in_training_and_seeded():
    cfg = ViTConfig(dropout=0.1)
    x = images(cfg)

    def model(seed):
        m = TinyViT(cfg, seed=seed)
        m.params["W_head"][...] = 0.1  # a non-zero head, so dropout shows in the logits
        return m

    a = model(3)
    assert np.array_equal(a.forward(x), a.forward(x))  # evaluation: deterministic, no dropout
    assert not np.allclose(a.forward(x, train=True), a.forward(x))  # training drops
    assert np.array_equal(model(3).forward(x, train=True), model(3).forward(x, train=True))
    assert not np.allclose(model(4).forward(x, train=True), model(3).forward(x, train=True))


# ---------------------------------------------------------------- checkpoints


def test_evaluation_keeps_no_activations():
    model = TinyViT(tiny_config())
    x = images(model.cfg)
    model.forward(x)  # evaluation
    assert all(b.cache is None for b in model.blocks) and model.blocks[0].att is not None
    with pytest.raises(RuntimeError, match="train=True"):
        model.backward(np.ones((B, model.cfg.n_classes), np.float32))
    model.forward(x, train=True)
    model.backward(np.ones((B, model.cfg.n_classes), np.float32))


def test_save_load_gives_identical_logits(tmp_path):
    model = TinyViT(ViTConfig(n_classes=15))
    randomise(model, 0.05)
    x = images(model.cfg)
    path = tmp_path / "model.npz"
    model.save(path, meta={"task": "tense_person"})
    loaded, meta = TinyViT.load(path, expect=ViTConfig(n_classes=15))
    assert meta == {"task": "tense_person"}
    assert np.array_equal(loaded.forward(x), model.forward(x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left behind


def test_load_refuses_another_config(tmp_path):
    path = tmp_path / "model.npz"
    TinyViT(ViTConfig(n_classes=5)).save(path)
    with pytest.raises(ValueError, match=r"n_classes=5 \(expected 15\)"):
        TinyViT.load(path, expect=ViTConfig(n_classes=15))


# ---------------------------------------------------------------- the design holds


def test_parameter_total_matches_blueprint(capsys):
    vit.main([])
    printed = int(re.search(r"total\s+([\d,]+)", capsys.readouterr().out)[1].replace(",", ""))
    blueprint = (Path(__file__).parents[1] / "BLUEPRINT.md").read_text()
    assert printed == int(re.search(r"\*\*total\*\* \| \| \*\*([\d,]+)\*\*", blueprint)[1]
                          .replace(",", ""))
    assert printed == TinyViT(ViTConfig()).n_params() == 207_749


def test_vit_imports_the_phase17_block():
    assert vit.TransformerBlock is phase17.TransformerBlock
    model = TinyViT(ViTConfig())
    assert all(isinstance(b, phase17.TransformerBlock) and not b.causal for b in model.blocks)
    source = Path(vit.__file__).read_text()
    assert not re.search(r"def \w*attention|transpose\(0, 1, 3, 2\)", source)  # nothing copied


# ---------------------------------------------------------------- data parallel


def test_data_parallel_step_is_the_full_batch_step():
    """Two half-batches on two replicas give the full batch's loss and gradients."""
    model = TinyViT(tiny_config(), dtype=np.float64)
    randomise(model)
    x, y = rng.uniform(-1, 1, (7, 8, 8, 3)), np.array([0, 1, 2, 2, 1, 0, 1])  # odd: uneven shards
    logits = model.forward(x, train=True)  # dropout is 0 in tiny_config
    loss, dlogits = cross_entropy(logits, y)
    model.zero_grad()
    model.backward(dlogits)
    full = [g.copy() for _, _, g in model.named_parameters()]
    with DataParallel(model, cross_entropy) as parallel:
        loss_dp, logits_dp = parallel.train_step(x, y)
        assert loss_dp == pytest.approx(loss, rel=1e-12)
        assert np.allclose(logits_dp, logits, rtol=1e-12)
        for (name, _, g), ref in zip(model.named_parameters(), full):
            assert np.allclose(g, ref, rtol=1e-10, atol=1e-14), name
        assert np.allclose(parallel.forward(x), logits, rtol=1e-12)
        assert np.allclose(parallel.forward(x, chunk=2), logits, rtol=1e-12)  # shards of 4, 3


def test_data_parallel_batch_of_one():
    """One image, one shard: the idle replica's gradients from the step before are not added."""
    model = TinyViT(tiny_config(), dtype=np.float64)
    randomise(model)
    x = rng.uniform(-1, 1, (1, 8, 8, 3))
    with DataParallel(model, cross_entropy) as parallel:
        parallel.train_step(rng.uniform(-1, 1, (4, 8, 8, 3)), np.array([0, 1, 2, 0]))
        loss, logits = parallel.train_step(x, np.array([2]))
    assert np.isfinite(loss) and logits.shape == (1, 3)
    dp_grads = [g.copy() for _, _, g in model.named_parameters()]
    _, dlogits = cross_entropy(model.forward(x, train=True), np.array([2]))
    model.zero_grad()
    model.backward(dlogits)
    for (name, _, g), g_dp in zip(model.named_parameters(), dp_grads):
        assert np.allclose(g, g_dp, rtol=1e-10, atol=1e-14), name


def test_data_parallel_dropout_is_seeded():
    x = images(tiny_config(), 6)

    def grads(seed):
        model = TinyViT(tiny_config(dropout=0.2), seed=1)
        randomise(model, 0)
        model.params["W_head"][...] = 0.1
        with DataParallel(model, cross_entropy, seed=seed) as parallel:
            parallel.train_step(x, np.arange(6) % 3)
        return np.concatenate([g.ravel() for _, _, g in model.named_parameters()])

    assert np.array_equal(grads(5), grads(5))
    assert not np.array_equal(grads(5), grads(6))


# ---------------------------------------------------------------- the benchmark


def test_flop_count_matches_a_hand_count():
    # embedding 2·64·48·64; 3 full blocks of 2·65·64·192 (qkv) + 2·2·4·65·65·16 (attention)
    # + 2·65·64·64 (W_o) + 2·2·65·64·256 (MLP); the [CLS]-only last block; the head 2·64·5
    full = 1_597_440 + 1_081_600 + 532_480 + 4_259_840
    last = 1_597_440 + 16_640 + 8_192 + 65_536
    assert bench.flops_per_image(ViTConfig()) == 393_216 + 3 * full + last + 640 == 24_495_744
    # mean pooling: 64 tokens, and the last block updates them all
    full = 2 * 64 * 64 * 192 + 2 * 2 * 4 * 64 * 64 * 16 + 2 * 64 * 64 * 64 + 2 * 2 * 64 * 64 * 256
    assert bench.flops_per_image(ViTConfig(pool="mean")) == 393_216 + 4 * full + 640


@pytest.mark.parametrize("switches, needle", [
    ({"position": "sinusoidal"}, "position='sinusoidal' must be one of learned, none"),
    ({"attention": "self"}, "attention='self' lets no patch reach [CLS]; use pool='mean'"),
    ({"patch_size": 5}, "image_size=32 is not a multiple of patch_size=5"),
    ({"d_model": 30}, "d_model=30 is not a multiple of n_heads=4")])
def test_config_refuses_what_cannot_be_built(switches, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        ViTConfig(**switches)


def test_mean_pooling_has_no_cls_and_no_position_has_no_pos():
    model = TinyViT(ViTConfig(pool="mean", position="none"))
    assert "cls" not in model.params and "pos" not in model.params
    assert model.embed(images(model.cfg)).shape == (B, 64, 64)
    assert model.forward(images(model.cfg)).shape == (B, 5)


@pytest.mark.slow
def test_benchmark_smoke(capsys):
    """A fast run of `python vit.py --bench`: it times, counts and names its BLAS."""
    vit.main(["--bench", "--bench-steps", "1"])
    out = capsys.readouterr().out
    for needle in ("training step, batch 32:", "inference,     batch 256:", "images/s",
                   "GFLOP/s", "kernel", "ceiling: 2048×2048 float32 matmul"):
        assert needle in out, needle


@pytest.mark.parametrize("cfg", [ViTConfig(), ViTConfig(n_classes=300), tiny_config(),
                                 *(ViTConfig(patch_size=8, **s) for s in SWITCHED)])
def test_parameter_count_without_building(cfg):
    assert vit.n_parameters(cfg) == TinyViT(cfg).n_params()
