"""The transformer's layers as formulas: each a forward/backward pair, written to be read.

    name_forward(inputs...) -> (out, cache)        name_backward(dout, cache) -> d inputs

Read this file for the maths; the gradient checks in tests/ run on it. `fast_layers.py` has the
same functions with the same signatures, tuned for speed, and a test checks that each of them
gives what this file gives. Shapes: B batch, T tokens, Tq tokens that ask a query (T unless
fewer are asked for), C model width, H heads, hs = C / H head size, F MLP width.
"""

import math

import numpy as np


def linear_forward(x, W, b):
    """out = x @ W + b.   x (..., D_in), W (D_in, D_out), b (D_out,) -> out (..., D_out)."""
    return x @ W + b, (x, W)


def linear_backward(dout, cache):
    """dout (..., D_out) -> dx (..., D_in), dW (D_in, D_out), db (D_out,)."""
    x, W = cache
    x2 = x.reshape(-1, x.shape[-1])  # (N, D_in): every position of every example is a row
    d2 = dout.reshape(-1, dout.shape[-1])  # (N, D_out)
    return dout @ W.T, x2.T @ d2, d2.sum(axis=0)


def layernorm_forward(x, gain, bias, eps=1e-5):
    """out = gain · (x − mean) / √(var + eps) + bias, over the last axis.
    x (..., C), gain (C,), bias (C,) -> out (..., C)."""
    mean = x.mean(axis=-1, keepdims=True)  # (..., 1)
    std = np.sqrt(x.var(axis=-1, keepdims=True) + eps)  # (..., 1)
    xhat = (x - mean) / std  # (..., C): zero mean, unit variance
    return gain * xhat + bias, (xhat, gain, std)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dgain (C,), dbias (C,).

    xhat moves with x directly and through the mean and the variance, so dx is dxhat with its
    projections on 1 (the mean) and on xhat (the variance) taken out, divided by std."""
    xhat, gain, std = cache
    C = xhat.shape[-1]
    dgain = (dout * xhat).reshape(-1, C).sum(axis=0)
    dbias = dout.reshape(-1, C).sum(axis=0)
    dxhat = dout * gain  # (..., C)
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / std
    return dx, dgain, dbias


GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def gelu_forward(x):
    """GELU, tanh approximation (GPT-2, BERT): y = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    t = np.tanh(GELU_C * (x + GELU_A * x**3))
    return 0.5 * x * (1 + t), (x, t)


def gelu_backward(dout, cache):
    """dy/dx = ½·(1 + t) + ½·x·(1 − t²)·du/dx,
    where t = tanh(u) and du/dx = √(2/π)·(1 + 3·0.044715·x²)."""
    x, t = cache
    du_dx = GELU_C * (1 + 3 * GELU_A * x**2)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * du_dx)


def dropout_forward(x, p, rng):
    """Inverted dropout: keep each entry with probability 1 − p and scale it by 1/(1 − p), so the
    expectation is unchanged. p = 0 (evaluation) is the identity and keeps no mask."""
    if p == 0.0:
        return x, None
    mask = ((rng.random(x.shape) >= p) / (1 - p)).astype(x.dtype)  # 0 or 1/(1 − p) per entry
    return x * mask, mask


def dropout_backward(dout, mask):
    """The kept entries pass their gradient on, scaled like their value; dropped ones pass none."""
    return dout if mask is None else dout * mask


def softmax(scores):
    """Softmax over the last axis; the row maximum is subtracted first, so exp never overflows."""
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def split_heads(x, n_heads):
    """(B, T, C) -> (B, H, T, hs): each head's slice of the features, as its own axis."""
    B, T, C = x.shape
    return x.reshape(B, T, n_heads, C // n_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(B, H, T, hs) -> (B, T, C): the inverse of split_heads."""
    B, H, T, hs = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * hs)


def causal_mask(Tq, T):
    """(Tq, T) True where key j comes after query i (j > i): what a causal token must not read."""
    return np.triu(np.ones((Tq, T), dtype=bool), k=1)


def self_mask(Tq, T):
    """(Tq, T) True wherever j ≠ i: a token that may read only itself (nothing passes between
    tokens; the lessons' "no mixing" model)."""
    return ~np.eye(Tq, T, dtype=bool)


def attention_forward(qkv, n_heads, mask=None, n_queries=None):
    """Multi-head scaled dot-product attention: att = softmax(q·kᵀ/√hs), y = att·v.

    qkv (B, T, 3C), the fused projection [q | k | v] -> y (B, Tq, C). Only the first
    Tq = n_queries tokens (default: all T) ask a query; every token is read as key and value.
    `mask` (Tq, T), if given, is True where query i must not read key j (causal_mask: token i
    reads tokens 0..i only). cache[-1] is att (B, H, Tq, T): how much token i reads token j.
    """
    q, k, v = (split_heads(part, n_heads) for part in np.split(qkv, 3, axis=-1))  # (B, H, T, hs)
    q = q[:, :, :n_queries]  # (B, H, Tq, hs): the tokens that ask
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, Tq, T)
    att = softmax(scores if mask is None else np.where(mask, -np.inf, scores))
    return merge_heads(att @ v), (q, k, v, att)  # y (B, Tq, C)


def attention_backward(dy, cache):
    """dy (B, Tq, C) -> dqkv (B, T, 3C)."""
    q, k, v, att = cache  # q (B, H, Tq, hs); k, v (B, H, T, hs); att (B, H, Tq, T)
    hs = q.shape[-1]
    dy = split_heads(dy, q.shape[1])  # (B, H, Tq, hs)
    dv = att.swapaxes(-1, -2) @ dy  # (B, H, T, hs)
    datt = dy @ v.swapaxes(-1, -2)  # (B, H, Tq, T)
    dscores = att * (datt - (att * datt).sum(axis=-1, keepdims=True))  # softmax backward, per row
    dk = dscores.swapaxes(-1, -2) @ q / math.sqrt(hs)  # (B, H, T, hs)
    dq = np.zeros_like(k)  # (B, H, T, hs): a token that asked no query (i ≥ Tq) gets dq = 0
    dq[:, :, :q.shape[2]] = dscores @ k / math.sqrt(hs)
    return np.concatenate([merge_heads(d) for d in (dq, dk, dv)], axis=-1)  # (B, T, 3C)
