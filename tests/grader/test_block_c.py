"""Block C, the ViT: patchify, the patch embedding, [CLS], positions, the blocks, the head, forward
and backward. Tests the spec's interface, not one way of writing it. `uv run pytest -m block_c`."""

import numpy as np
import pytest
from gradcheck import TOL, numerical_grad, rel_error

import vit
from vit import TinyViT, ViTConfig, tiny_config

pytestmark = pytest.mark.block_c
rng = np.random.default_rng(0)


def images(cfg, n=3):
    return rng.uniform(-1, 1, (n, cfg.image_size, cfg.image_size, 3)).astype(np.float32)


def test_patchify_gives_64_patches_of_48():
    assert vit.patchify(images(ViTConfig()), 4).shape == (3, 64, 48)


def test_patches_come_in_row_major_order_each_a_4x4_square():
    x = images(ViTConfig())
    patches = vit.patchify(x, 4)
    for p in (0, 1, 7, 8, 27, 63):
        i, j = divmod(p, 8)  # patch p = 8·i + j: row block i, column block j
        assert np.array_equal(patches[:, p], x[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4].reshape(3, 48))


def test_unpatchify_undoes_patchify():
    x = images(ViTConfig())
    assert np.array_equal(vit.unpatchify(vit.patchify(x, 4), 4, 32), x)


def test_the_embedding_prepends_cls_and_adds_positions():
    model = TinyViT(ViTConfig())
    p = model.params
    assert p["cls"].shape == (1, 1, 64) and p["pos"].shape == (1, 65, 64)
    tokens = model.embed(images(model.cfg))
    assert tokens.shape == (3, 65, 64)
    # [CLS] is token 0 (the same for every image: cls + pos[0]), not a patch's
    assert np.allclose(tokens[:, 0], (p["cls"] + p["pos"][:, 0])[0], atol=1e-6)
    assert not np.allclose(tokens[0, 1], tokens[1, 1])


def test_the_position_embedding_broadcasts_over_the_batch():
    model = TinyViT(ViTConfig())
    x = images(model.cfg)
    before = model.embed(x)
    model.params["pos"][0, 5] += 1.0  # move position 5 only
    moved = model.embed(x) - before
    assert np.allclose(moved[:, 5], 1.0, atol=1e-5)  # every image's token 5 ...
    assert np.allclose(np.delete(moved, 5, axis=1), 0.0, atol=1e-5)  # ... and nothing else


@pytest.mark.parametrize("n_classes", [5, 15, 300])
def test_forward_gives_one_logit_per_class(n_classes):
    model = TinyViT(ViTConfig(n_classes=n_classes))
    logits = model.forward(images(model.cfg))
    assert logits.shape == (3, n_classes) and np.isfinite(logits).all()


def test_every_gradient_against_central_differences():
    """Float64, a small config: every entry of every tensor, and of the input image."""
    model = TinyViT(tiny_config(), dtype=np.float64)
    for _, p, _ in model.named_parameters():  # off any initialisation, so nothing is trivial
        p += rng.normal(size=p.shape) * 0.3
    x = rng.uniform(-1, 1, (2, 8, 8, 3))
    R = rng.normal(size=(2, model.cfg.n_classes))

    def loss():
        return float((model.forward(x, train=True) * R).sum())

    loss()
    model.zero_grad()
    dx = model.backward(R)
    assert rel_error(dx, numerical_grad(loss, x)) < TOL, "d images"
    for name, p, g in model.named_parameters():
        err = rel_error(g, numerical_grad(loss, p))
        assert err < TOL, f"{name}: relative error {err:.1e}"
