"""The Phase 17 block: each reference primitive (layers.py) and the whole block, built on either
set of primitives, against central differences. test_layers.py checks that the tuned primitives
give what the reference ones give."""

import numpy as np
import pytest
from gradcheck import TOL, numerical_grad, rel_error

from minimodel.transformer.block import TransformerBlock
from minimodel.transformer.layers import (
    attention_backward,
    attention_forward,
    causal_mask,
    dropout_backward,
    dropout_forward,
    gelu_backward,
    gelu_forward,
    layernorm_backward,
    layernorm_forward,
    linear_backward,
    linear_forward,
    self_mask,
)

BOTH = pytest.mark.parametrize("primitives", ["reference", "tuned"])
# tuned primitives equal the reference ones (test_layers.py): their gradient checks are slow-tier
CHECKED = pytest.mark.parametrize("primitives", [
    "reference", pytest.param("tuned", marks=pytest.mark.slow)])

rng = np.random.default_rng(0)


def check_pair(forward, backward, inputs):
    """forward(*inputs) -> (out, cache); backward(dout, cache) -> grads of inputs, in order."""
    R = rng.normal(size=forward(*inputs)[0].shape)  # L = Σ out·R, so dL/dout = R
    _, cache = forward(*inputs)
    grads = backward(R, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(inputs)
    for x, g in zip(inputs, grads):
        num = numerical_grad(lambda: float((forward(*inputs)[0] * R).sum()), x)
        assert rel_error(g, num) < TOL, f"gradient of input {x.shape}"


def test_linear_gradients():
    check_pair(linear_forward, linear_backward,
               [rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)])


def test_layernorm_gradients():
    check_pair(layernorm_forward, layernorm_backward,
               [rng.normal(size=(2, 3, 6)), rng.normal(size=6), rng.normal(size=6)])


def test_gelu_gradient_and_values():
    check_pair(gelu_forward, gelu_backward, [rng.normal(size=(3, 7)) * 2])
    y, _ = gelu_forward(np.array([-10.0, 0.0, 10.0]))
    assert np.allclose(y, [0.0, 0.0, 10.0])


@pytest.mark.parametrize("mask", [None, causal_mask(5, 5), self_mask(5, 5)])
def test_attention_gradient(mask):
    qkv = rng.normal(size=(2, 5, 3 * 4))
    check_pair(lambda x: attention_forward(x, 2, mask), attention_backward, [qkv])


def test_dropout_gradient_and_scale():
    x = rng.normal(size=(4, 50))
    fwd = lambda x: dropout_forward(x, 0.3, np.random.default_rng(5))  # same mask every call
    check_pair(fwd, dropout_backward, [x])
    out, _ = dropout_forward(np.ones((1000, 100)), 0.1, np.random.default_rng(1))
    assert abs((out == 0).mean() - 0.1) < 0.005  # drops about p of the entries
    assert abs(out.mean() - 1.0) < 0.01  # and keeps the expectation
    assert dropout_forward(x, 0.0, None)[0] is x  # evaluation: identity


@CHECKED
@pytest.mark.parametrize("causal", [False, True])
def test_block_gradients_every_parameter(causal, primitives):
    """Every entry of every parameter, and the input, with dropout on (the same mask each call)."""
    block = TransformerBlock(8, 2, 16, dropout=0.2, causal=causal, dtype=np.float64,
                             primitives=primitives)
    for v in block.params.values():  # move off the init (unit gains, zero biases) to test more
        v += rng.normal(size=v.shape) * 0.3
    x = rng.normal(size=(2, 5, 8))
    R = rng.normal(size=x.shape)

    def loss():
        block.rng = np.random.default_rng(11)
        return float((block.forward(x, train=True) * R).sum())

    loss()
    block.zero_grad()
    dx = block.backward(R)
    assert rel_error(dx, numerical_grad(loss, x)) < TOL, "input"
    for name, p in block.params.items():
        err = rel_error(block.grads[name], numerical_grad(loss, p))
        assert err < TOL, f"{name}: relative error {err:.1e}"


@BOTH
def test_causality_is_real(primitives):
    x = rng.normal(size=(1, 6, 8)).astype(np.float32)
    x2 = x.copy()
    x2[:, 4:] += rng.normal(size=(1, 2, 8))  # change tokens 4, 5 (not by a constant: LN erases it)
    causal = TransformerBlock(8, 2, 16, causal=True, primitives=primitives)
    assert np.array_equal(causal.forward(x)[:, :4], causal.forward(x2)[:, :4])
    assert not np.allclose(causal.forward(x)[:, 4:], causal.forward(x2)[:, 4:])
    assert np.allclose(np.triu(causal.att[0, 0], k=1), 0)  # nothing read from the future
    both_ways = TransformerBlock(8, 2, 16, causal=False)
    assert not np.allclose(both_ways.forward(x)[:, :4], both_ways.forward(x2)[:, :4])


@BOTH
def test_a_self_mask_lets_nothing_pass_between_tokens(primitives):
    """The same mask path as causal: with self_mask each token's output is its own alone."""
    x = rng.normal(size=(1, 6, 8)).astype(np.float32)
    x2 = x.copy()
    x2[:, 4:] += rng.normal(size=(1, 2, 8))
    alone = TransformerBlock(8, 2, 16, causal=False, mask=self_mask, primitives=primitives)
    assert np.array_equal(alone.forward(x)[:, :4], alone.forward(x2)[:, :4])
    assert np.allclose(alone.att[0, 0], np.eye(6))


@BOTH
def test_block_follows_parameter_dtype(primitives):
    x = rng.normal(size=(2, 5, 8))
    for dtype in (np.float32, np.float64):
        block = TransformerBlock(8, 2, 16, dropout=0.1, dtype=dtype, primitives=primitives)
        out = block.forward(x.astype(dtype), train=True)
        assert out.dtype == dtype
        assert block.backward(np.ones_like(out)).dtype == dtype
        assert all(g.dtype == dtype for g in block.grads.values())
        assert block.att.shape == (2, 2, 5, 5) and np.allclose(block.att.sum(-1), 1)


def test_block_refuses_bad_heads_and_primitives():
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(10, 3, 16)
    with pytest.raises(ValueError, match="primitives='fast' must be one of tuned, reference"):
        TransformerBlock(8, 2, 16, primitives="fast")


@CHECKED
@pytest.mark.parametrize("causal", [False, True])
def test_block_n_queries_updates_only_the_first_tokens(causal, primitives):
    """n_queries=2: the first two rows of the full output, and every gradient still checked."""
    block = TransformerBlock(8, 2, 16, dropout=0.0, causal=causal, dtype=np.float64,
                             primitives=primitives)
    for v in block.params.values():
        v += rng.normal(size=v.shape) * 0.3
    x = rng.normal(size=(2, 5, 8))
    first_two = block.forward(x, n_queries=2)
    assert block.att.shape == (2, 2, 2, 5)  # two queries over five keys
    assert np.allclose(first_two, block.forward(x)[:, :2], rtol=1e-12)
    R = rng.normal(size=(2, 2, 8))

    def loss():
        return float((block.forward(x, train=True, n_queries=2) * R).sum())  # dropout is 0

    loss()
    block.zero_grad()
    dx = block.backward(R)
    assert dx.shape == x.shape
    assert rel_error(dx, numerical_grad(loss, x)) < TOL, "input"
    for name, p in block.params.items():
        assert rel_error(block.grads[name], numerical_grad(loss, p)) < TOL, name
