"""The layers of layers.py, tuned for speed: the same functions, the same signatures, the same
results (tests/test_layers.py checks each pair against layers.py in float64). Read layers.py for
the maths; this file is for the speed, and every trick is explained here, once.

What each trick buys was measured with a profiler on the lab's 2-core machines (NumPy 2.4 with
OpenBLAS); `python vit.py --bench` times the whole step.

- Results finished in place (`out = a @ W; out += b`), not written as one expression
  (`a @ W + b`). For a temporary over 256 KB NumPy checks whether it may reuse it ("temporary
  elision") by walking the C stack with backtrace(), which cost about a millisecond per
  expression: more than the arithmetic.
- `x*x*x`, never `x**3`: in float32 NumPy's power took 8 ms per block, the products 0.14 ms.
- Dropout draws 16 random bits per entry, not a float: three times cheaper. An entry is dropped
  when its bits are below round(p·2¹⁶), so the rate is p to within 2⁻¹⁷ (0.100006 for 0.1), and
  the survivors are scaled by exactly 1/(1 − that rate). The mask is kept as floats (0 or the
  scale): multiplying by a bool array costs twice as much, and the mask is used twice.
- Row means and batch sums as matrix-vector products against a cached constant vector:
  `x.mean(-1)` on short rows is reduced row by row, 5× slower; `x.sum(0)` 3× slower. The batch
  sums go through `np.dot`, not `@`: NumPy's `@` with a vector on the left keeps Python's lock
  (the GIL) while BLAS runs, which stalls the other DataParallel thread (two threads doing it
  took 2.1–2.8× as long as one). The constant vectors are made once: making them each time
  added a third to these 5–10 µs calls, on the thread that holds the lock.
- LayerNorm keeps the standard deviation, not its reciprocal: one operation fewer on the
  (..., 1) statistics, and each such call costs about a microsecond of dispatch.
- Attention scales q (Tq·hs entries) rather than the scores (Tq·T), and writes `att @ v` and the
  three gradients of its backward straight into their final layouts through `out=` views.
- The softmax's exp and normalisation run in place on the scores' buffer.
"""

import functools
import math

import numpy as np

from minimodel.transformer.layers import GELU_A, GELU_C


def linear_forward(x, W, b):
    """out = x @ W + b.   x (..., D_in), W (D_in, D_out), b (D_out,) -> out (..., D_out)."""
    out = x.reshape(-1, x.shape[-1]) @ W  # (N, D_out); one 2-D product, not a batched one
    out += b
    return out.reshape(*x.shape[:-1], W.shape[1]), (x, W)


def linear_backward(dout, cache):
    """dout (..., D_out) -> dx (..., D_in), dW (D_in, D_out), db (D_out,)."""
    x, W = cache
    x2 = x.reshape(-1, x.shape[-1])  # (N, D_in)
    d2 = dout.reshape(-1, dout.shape[-1])  # (N, D_out)
    dx = (d2 @ W.T).reshape(x.shape)
    return dx, x2.T @ d2, column_sum(d2)


def row_mean(x):
    """Mean over the last axis, (..., C) -> (..., 1), as a matrix-vector product."""
    return (x @ constant(x.shape[-1], 1.0 / x.shape[-1], x.dtype))[..., None]


def column_sum(x):
    """Sum over the first axis of a 2-D array, (N, C) -> (C,), as a vector-matrix product
    through np.dot (which lets the GIL go)."""
    return np.dot(constant(len(x), 1.0, x.dtype), x)


@functools.cache
def constant(n, value, dtype):
    """A read-only vector of n copies of value, made once."""
    v = np.full(n, value, dtype)
    v.flags.writeable = False
    return v


def layernorm_forward(x, gain, bias, eps=1e-5):
    """out = gain · (x − mean) / √(var + eps) + bias, over the last axis of x (..., C)."""
    xhat = x - row_mean(x)  # centred ...
    std = np.sqrt(np.vecdot(xhat, xhat)[..., None] / x.shape[-1] + eps)  # (..., 1)
    xhat /= std  # ... and scaled to unit variance
    out = xhat * gain
    out += bias
    return out, (xhat, gain, std)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dgain (C,), dbias (C,)."""
    xhat, gain, std = cache
    C = xhat.shape[-1]
    dgain = column_sum((dout * xhat).reshape(-1, C))
    dbias = column_sum(dout.reshape(-1, C))
    dxhat = dout * gain
    # xhat depends on x through the mean and the variance: subtract both projections
    dx = dxhat - row_mean(dxhat)
    dx -= xhat * (np.vecdot(dxhat, xhat)[..., None] / C)
    dx /= std
    return dx, dgain, dbias


def gelu_forward(x):
    """GELU (tanh approximation), in place on as few temporaries as possible: it is the
    model's largest elementwise operation."""
    u = x * x
    u *= GELU_A * GELU_C
    u += GELU_C
    u *= x  # u = √(2/π)·(x + 0.044715·x³)
    t = np.tanh(u, out=u)
    y = t + 1.0
    y *= x
    y *= 0.5
    return y, (x, t)


def gelu_backward(dout, cache):
    """dy/dx = ½·(1 + t) + ½·x·(1 − t²)·du/dx, in place."""
    x, t = cache
    du_dx = x * x
    du_dx *= 3 * GELU_A * GELU_C
    du_dx += GELU_C
    dy_dx = t * t
    np.subtract(1.0, dy_dx, out=dy_dx)  # 1 − t² = tanh'(u)
    dy_dx *= x
    dy_dx *= du_dx
    dy_dx += t
    dy_dx += 1.0
    dy_dx *= 0.5
    dy_dx *= dout
    return dy_dx


def dropout_forward(x, p, rng):
    """Inverted dropout from 16 random bits per entry; the mask is 0 or 1/(1 − rate)."""
    if p == 0.0:
        return x, None
    threshold = round(p * 65536)
    bits = rng.bit_generator.random_raw(-(-x.size // 4)).view(np.uint16)[: x.size]
    mask = (bits >= threshold).reshape(x.shape).astype(x.dtype)
    mask *= 65536 / (65536 - threshold)  # 0 or 1/(1 − rate)
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout if mask is None else dout * mask


def attention_forward(qkv, n_heads, mask=None, n_queries=None):
    """qkv (B, T, 3C) -> y (B, Tq, C), cache; cache[-1] is att (B, H, Tq, T), as in layers.py."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_heads
    Tq = T if n_queries is None else n_queries
    q, k, v = qkv.reshape(B, T, 3, n_heads, hs).transpose(2, 0, 3, 1, 4)  # each (B, H, T, hs)
    q = q[:, :, :Tq] * (1.0 / math.sqrt(hs))  # (B, H, Tq, hs), scaled
    att = q @ k.transpose(0, 1, 3, 2)  # (B, H, Tq, T) scores
    if mask is not None:  # (Tq, T): True where query i must not read key j
        att[..., mask] = -np.inf
    att -= att.max(axis=-1, keepdims=True)  # stable softmax; each row reads some key
    np.exp(att, out=att)
    att /= (att @ constant(T, 1.0, att.dtype))[..., None]  # row sums
    y = np.empty((B, Tq, n_heads, hs), dtype=qkv.dtype)
    np.matmul(att, v, out=y.transpose(0, 2, 1, 3))  # (B, H, Tq, hs), written as (B, Tq, H, hs)
    return y.reshape(B, Tq, C), (q, k, v, att)


def attention_backward(dy, cache):
    """dy (B, Tq, C) -> dqkv (B, T, 3C)."""
    q, k, v, att = cache  # q is already scaled by 1/√hs
    B, H, Tq, hs = q.shape
    T = k.shape[2]
    dy = dy.reshape(B, Tq, H, hs).transpose(0, 2, 1, 3)  # (B, H, Tq, hs)
    dqkv = np.empty((B, T, 3, H, hs), dtype=dy.dtype)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # views (B, H, T, hs) into dqkv
    np.matmul(att.transpose(0, 1, 3, 2), dy, out=dv)
    ds = dy @ v.transpose(0, 1, 3, 2)  # (B, H, Tq, T): d att
    # softmax backward, row by row: ds = att ⊙ (datt − Σ_j datt·att); masked entries have att = 0
    ds -= np.vecdot(ds, att)[..., None]
    ds *= att
    np.matmul(ds.transpose(0, 1, 3, 2), q, out=dk)  # scores = q_scaled·kᵀ: dk = dsᵀ·q_scaled ...
    np.matmul(ds, k, out=dq[:, :, :Tq])
    dq[:, :, :Tq] *= 1.0 / math.sqrt(hs)  # ... and dq = ds·k/√hs
    dq[:, :, Tq:] = 0.0  # tokens past Tq asked no query
    return dqkv.reshape(B, T, 3 * H * hs)


