"""The tuned primitives (fast_layers.py) give what the reference ones (layers.py) give, forward and
backward, in float64: so the tuned code inherits the reference code's gradient checks. And the
causal block learns text, as the same block without its mask learns images."""

import math

import numpy as np
import pytest

from minimodel.grammar.verbs import PERSONS, TENSES, VERBS
from minimodel.transformer import fast_layers as fast
from minimodel.transformer import layers as ref
from minimodel.transformer.block import TransformerBlock

rng = np.random.default_rng(0)


def same_pair(name, inputs, extra=()):
    """name_forward(*inputs, *extra) and name_backward(dout, cache) agree between the modules."""
    outs = {}
    for module in (ref, fast):
        out, cache = getattr(module, f"{name}_forward")(*[x.copy() for x in inputs], *extra)
        dout = np.random.default_rng(1).normal(size=out.shape)
        grads = getattr(module, f"{name}_backward")(dout, cache)
        outs[module] = (out, grads if isinstance(grads, tuple) else (grads,))
    (out_r, grads_r), (out_f, grads_f) = outs[ref], outs[fast]
    np.testing.assert_allclose(out_f, out_r, rtol=1e-12, atol=1e-12, err_msg=f"{name} forward")
    assert len(grads_f) == len(grads_r)
    for i, (gf, gr) in enumerate(zip(grads_f, grads_r)):
        np.testing.assert_allclose(gf, gr, rtol=1e-11, atol=1e-12,
                                   err_msg=f"{name} backward, gradient {i}")


def test_linear():
    same_pair("linear", [rng.normal(size=(2, 5, 6)), rng.normal(size=(6, 7)), rng.normal(size=7)])


def test_layernorm():
    same_pair("layernorm", [rng.normal(size=(2, 5, 6)) * 3 + 1, rng.normal(size=6),
                            rng.normal(size=6)])


def test_gelu():
    same_pair("gelu", [rng.normal(size=(4, 9)) * 3])


@pytest.mark.parametrize("mask", [None, ref.causal_mask, ref.self_mask])
@pytest.mark.parametrize("n_queries", [None, 1, 3])
def test_attention(mask, n_queries):
    masked = None if mask is None else mask(n_queries or 6, 6)
    same_pair("attention", [rng.normal(size=(2, 6, 3 * 8))], extra=(2, masked, n_queries))


def test_dropout_with_the_same_mask():
    """The two draw their masks differently (16-bit integers against floats); given a mask,
    each forward is x·mask and each backward dout·mask."""
    x, dout = rng.normal(size=(50, 40)), rng.normal(size=(50, 40))
    for module in (ref, fast):
        out, mask = module.dropout_forward(x, 0.25, np.random.default_rng(3))
        assert set(np.unique(mask)) == {0.0, mask.max()} and abs((mask == 0).mean() - 0.25) < 0.03
        np.testing.assert_array_equal(out, x * mask)
        np.testing.assert_array_equal(fast.dropout_backward(dout, mask),
                                      ref.dropout_backward(dout, mask))
    assert fast.dropout_forward(x, 0.0, None)[0] is x and ref.dropout_forward(x, 0.0, None)[0] is x


@pytest.mark.parametrize("causal", [False, True])
def test_whole_block_on_either_primitives(causal):
    """The same weights, the same input: the same output and the same gradients."""
    blocks = [TransformerBlock(8, 2, 16, causal=causal, dtype=np.float64, primitives=p,
                               rng=np.random.default_rng(4)) for p in ("reference", "tuned")]
    x, dout = rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 5, 8))
    outs = [b.forward(x, train=True) for b in blocks]
    dxs = [b.backward(dout) for b in blocks]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dxs[1], dxs[0], rtol=1e-11, atol=1e-12)
    for k in blocks[0].grads:
        np.testing.assert_allclose(blocks[1].grads[k], blocks[0].grads[k], rtol=1e-11,
                                   atol=1e-12, err_msg=k)


# ---------------------------------------------------------------- the causal block learns text


def test_causal_block_learns_next_token_without_seeing_the_future():
    """Sentences of four tokens, [person, verb, tense, ending], where the ending (one of 15)
    is fixed by the person and the tense, and the first three are drawn at random. A causal
    model trained on next-token prediction must learn the ending (loss near 0, reading tokens
    0 and 2) and cannot beat chance on the random tokens: a model that saw the future would."""
    n_p, n_v, n_t = len(PERSONS), len(VERBS), len(TENSES)
    vocab = n_p + n_v + n_t + n_t * n_p
    C, B, steps, lr = 32, 64, 300, 0.1
    r = np.random.default_rng(0)

    def batch(n):
        p, v, t = r.integers(0, n_p, n), r.integers(0, n_v, n), r.integers(0, n_t, n)
        ending = n_p + n_v + n_t + t * n_p + p
        return np.stack([p, n_p + v, n_p + n_v + t, ending], axis=1)  # (n, 4) token ids

    block = TransformerBlock(C, 2, 64, causal=True, dtype=np.float64, rng=r)
    emb = r.normal(0, 0.5, (vocab, C))
    pos = r.normal(0, 0.5, (3, C))
    W = np.zeros((C, vocab))

    def forward(tokens):  # -> log-probabilities of the next token (n, 3, vocab)
        h = block.forward(emb[tokens[:, :3]] + pos, train=True)  # (n, 3, C)
        z = h @ W
        z -= z.max(axis=-1, keepdims=True)
        return h, z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    params = [emb, pos, W] + list(block.params.values())
    velocity = [np.zeros_like(p) for p in params]
    for _ in range(steps):
        tokens = batch(B)
        h, logp = forward(tokens)
        dz = np.exp(logp)  # softmax − one-hot, averaged over the 3·B predictions
        np.put_along_axis(dz, tokens[:, 1:, None], np.take_along_axis(dz, tokens[:, 1:, None],
                                                                      -1) - 1, -1)
        dz /= 3 * B
        block.zero_grad()
        dW = h.reshape(-1, C).T @ dz.reshape(-1, vocab)
        dx = block.backward(dz @ W.T)  # (B, 3, C)
        demb = np.zeros_like(emb)
        np.add.at(demb, tokens[:, :3], dx)
        grads = [demb, dx.sum(axis=0), dW] + list(block.grads.values())
        for p, g, v in zip(params, grads, velocity):
            v *= 0.9
            v += g
            p -= lr * v

    tokens = batch(2000)
    _, logp = forward(tokens)
    nll = -np.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0].mean(axis=0)  # per position
    assert nll[2] < 0.05, f"the ending is not learned: {nll[2]:.3f} nats"
    # the verb and the tense are random: ln 20 and ln 5 is the best any causal model can do
    assert nll[0] > math.log(n_v) - 0.05 and nll[1] > math.log(n_t) - 0.05, nll
    # the same tokens with the future changed: the predictions at earlier positions do not move
    changed = tokens.copy()
    changed[:, 2] = n_p + n_v + (tokens[:, 2] - n_p - n_v + 1) % n_t
    np.testing.assert_array_equal(forward(changed)[1][:, :2], logp[:, :2])
