"""Block C, the ViT: patchify, the patch embedding, [CLS], positions, the blocks, the final
LayerNorm, the head, forward and backward. `uv run pytest -m block_c`.

Tests behaviour, never storage: `cls` may be (d,), (1, d) or (1, 1, d), `pos` (T, d) or (1, T, d),
patchify reshapes or loops. The gradients are checked where the optimiser reads them:
`model.flat_grads`, the one vector every gradient must be added into."""

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
    shape = vit.patchify(images(ViTConfig()), 4).shape
    assert shape == (3, 64, 48), (f"patchify of 3 images gave {shape}, not (3, 64, 48): "
                                  f"(B, patches, values), 64 patches of 4·4·3 values")


def square(x, p):
    """The 4×4×3 pixels of patch p = 8·i + j (row block i, column block j), each image's
    flattened in (row, column, channel) order: (B, 48)."""
    i, j = divmod(p, 8)
    return x[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4].reshape(len(x), 48)


def test_patches_come_in_row_major_order_each_a_4x4_square():
    x = images(ViTConfig())
    patches = vit.patchify(x, 4)
    for p in range(64):
        if np.array_equal(patches[:, p], square(x, p)):
            continue
        at = [q for q in range(64) if np.array_equal(np.sort(patches[:, p]), np.sort(square(x, q)))]
        where = divmod(p, 8)
        if at and at[0] != p:
            pytest.fail(f"patch {p} holds the pixels of patch {at[0]} "
                        f"(row block {at[0] // 8}, column block {at[0] % 8}), not those of row "
                        f"block {where[0]}, column block {where[1]}: the patches must come in "
                        f"row-major order, p = 8·i + j")
        if at:
            pytest.fail(f"patch {p} holds the right 4×4 pixels in the wrong order inside it: "
                        f"they must be flattened in (row, column, channel) order")
        pytest.fail(f"patch {p} is not the pixels of any one 4×4 square of the image")


def test_unpatchify_undoes_patchify():
    x = images(ViTConfig())
    back = vit.unpatchify(vit.patchify(x, 4), 4, 32)
    assert back.shape == x.shape and np.array_equal(back, x), \
        "unpatchify(patchify(x)) is not x: undo patchify's steps in reverse order"


def test_the_embedding_prepends_cls_to_the_patch_tokens():
    model = TinyViT(ViTConfig())
    x = images(model.cfg)
    tokens = model.embed(x)
    assert tokens.shape == (3, 65, 64), (f"embed gave {tokens.shape}, not (3, 65, 64): [CLS] "
                                         f"and 64 patch tokens of width 64 for 3 images")
    other = model.embed(-x)
    assert np.allclose(tokens[:, 0], tokens[0, 0], atol=1e-6) and \
        np.allclose(other[:, 0], tokens[0, 0], atol=1e-6), \
        "token 0 must be [CLS] (+ its position): the same for every image, whatever it shows"
    assert not np.allclose(tokens[:, 1:], other[:, 1:], atol=1e-4), \
        "tokens 1..64 must be the image's patches, embedded"


def test_positions_are_added_to_every_token_and_broadcast_over_the_batch():
    """Two one-colour images: their patch tokens differ only by their position embeddings,
    which must differ from position to position and be the same for every image."""
    model = TinyViT(ViTConfig())
    flat = np.stack([np.full((32, 32, 3), 0.5), np.full((32, 32, 3), -0.3)]).astype(np.float32)
    tokens = model.embed(flat)
    assert not np.allclose(tokens[0, 1:], tokens[0, 1], atol=1e-6), \
        ("the patch tokens of a one-colour image are all equal: no position embedding was added "
         "to them (pos: one row per token, [CLS] included, 65 × 64)")
    between = tokens[0] - tokens[1]  # (65, 64): the images' difference, the same at each patch
    assert np.allclose(between[1:], between[1], atol=1e-5), \
        ("the position embedding differs from image to image: add the same (65, 64) rows to "
         "every image of the batch (broadcast over B)")


@pytest.mark.parametrize("n_classes", [5, 15, 300])
def test_forward_gives_one_logit_per_class(n_classes):
    model = TinyViT(ViTConfig(n_classes=n_classes))
    logits = model.forward(images(model.cfg))
    assert logits.shape == (3, n_classes), f"forward gave {logits.shape}, not (3, {n_classes})"
    assert np.isfinite(logits).all(), "forward gave logits that are not finite"


def normalised(x, eps=1e-5):
    return (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + eps)


def test_the_head_reads_cls_after_the_blocks_and_a_final_layernorm():
    """encode = LayerNorm(token 0 of the last block's output); freshly made, the LayerNorm's
    gain is 1 and its bias 0, so the features are that token, normalised."""
    model = TinyViT(ViTConfig())
    x = images(model.cfg)
    feat = model.encode(x)
    assert feat.shape == (3, 64), f"encode gave {feat.shape}, not (3, 64): one feature vector " \
                                  f"an image"
    assert np.allclose(feat.mean(axis=1), 0, atol=1e-3) and np.allclose(feat.std(axis=1), 1,
                                                                        atol=1e-2), \
        ("encode's features are not layer-normalised: the final LayerNorm (ln_gain, ln_bias) "
         "after the last block is missing")
    out = model.embed(x)
    for block in model.blocks:
        out = block.forward(out)  # (3, 65, 64)
    if np.allclose(feat, normalised(out[:, 0]), atol=2e-3):
        return
    read = [t for t in range(65) if np.allclose(feat, normalised(out[:, t]), atol=2e-3)]
    if read:
        pytest.fail(f"encode reads token {read[0]} of the last block's output; the head must read "
                    f"[CLS], token 0 (index 0 of axis 1)")
    if np.allclose(feat, normalised(out[:, 1:].mean(axis=1)), atol=2e-3):
        pytest.fail("encode averages the patch tokens; the spec's head reads [CLS], token 0")
    pytest.fail("encode is not LayerNorm(token 0 of the blocks' output): embed, then every block "
                "in order, then [CLS]'s row, then the final LayerNorm")


def test_every_gradient_reaches_the_vector_the_optimiser_reads():
    """Float64, a small config: every entry of every parameter, changed where the optimiser
    changes it (model.flat_params), against central differences; and of the input image."""
    model = TinyViT(tiny_config(), dtype=np.float64)
    model.flat_params += rng.normal(size=model.flat_params.shape) * 0.3  # nothing trivial
    x = rng.uniform(-1, 1, (2, 8, 8, 3))
    R = rng.normal(size=(2, model.cfg.n_classes))

    def loss():
        return float((model.forward(x, train=True) * R).sum())

    loss()
    model.zero_grad()
    dx = model.backward(R)
    err = rel_error(dx, numerical_grad(loss, x))
    assert err < TOL, f"backward's gradient of the images is off by {err:.1e} (relative)"
    start = model.flat_params.ctypes.data
    for name, p, g in model.named_parameters():
        assert np.shares_memory(p, model.flat_params), \
            f"{name} is no longer a view into model.flat_params: never replace a parameter array"
        at = (p.ctypes.data - start) // p.itemsize  # where p lives in the flat vector
        seen = model.flat_grads[at:at + p.size].reshape(p.shape)
        want = numerical_grad(loss, p)
        if rel_error(seen, want) < TOL:
            continue
        if rel_error(g, want) < TOL:
            pytest.fail(f"the gradient of {name} is right but never reaches model.flat_grads, "
                        f"the vector SGD reads: it was assigned (grads[{name!r}] = ...); add "
                        f"into the array already there (grads[{name!r}] += ...)")
        pytest.fail(f"the gradient of {name} is off by {rel_error(seen, want):.1e} (relative) "
                    f"from central differences")


def test_backward_adds_into_the_gradients():
    """zero_grad clears; each backward adds (so gradients of several batches can be summed)."""
    model = TinyViT(tiny_config(), dtype=np.float64)
    x = rng.uniform(-1, 1, (2, 8, 8, 3))
    R = rng.normal(size=(2, model.cfg.n_classes))
    model.zero_grad()
    model.forward(x, train=True)
    model.backward(R)
    once = model.flat_grads.copy()
    model.forward(x, train=True)
    model.backward(R)
    assert np.allclose(model.flat_grads, 2 * once), \
        "a second backward must add to the gradients (+=), not replace them"
