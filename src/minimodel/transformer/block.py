"""The Phase 17 transformer block, in NumPy, with its backward pass written by hand.

Pre-LayerNorm, as in GPT-2 and ViT:

    x = x + dropout(attention(LN1(x)) @ W_o)
    x = x + dropout(dropout(gelu(LN2(x) @ W_1)) @ W_2)

Each primitive is a pair, `name_forward(...) -> (out, cache)` and `name_backward(dout, cache)`,
so it can be gradient-checked on its own; the block composes them, and its backward calls the
same pairs in reverse order. Everything follows the dtype of the parameters: float32 to train,
float64 to check gradients.

Speed note: large results are finished in place (`out = a @ W; out += b`), not as one
expression (`a @ W + b`). For a temporary over 256 KB NumPy checks whether it may reuse it
("temporary elision") by walking the C stack with backtrace(), which costs about a millisecond
on these machines: more than the arithmetic.
"""

import functools
import math

import numpy as np

# ---------------------------------------------------------------------------- primitives


def linear_forward(x, W, b):
    """x (..., D_in) @ W (D_in, D_out) + b (D_out,) -> out (..., D_out)."""
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
    """Mean over the last axis, (..., C) -> (..., 1). As a matrix-vector product it is 5×
    faster than x.mean(-1), which NumPy reduces row by row for short rows."""
    return (x @ constant(x.shape[-1], 1.0 / x.shape[-1], x.dtype))[..., None]


def column_sum(x):
    """Sum over the first axis of a 2-D array, (N, C) -> (C,): a gradient summed over the
    batch. As a vector-matrix product it is 3× faster than x.sum(axis=0). (np.dot, not `@`:
    NumPy's `@` with a vector on the left keeps Python's lock while BLAS runs, stalling the
    other DataParallel thread; np.dot lets it go.)"""
    return np.dot(constant(len(x), 1.0, x.dtype), x)


@functools.cache
def constant(n, value, dtype):
    """A read-only vector of n copies of value, made once. (These products take 5-10 µs: making
    the vector each time would add a third, on the thread that holds Python's lock.)"""
    v = np.full(n, value, dtype)
    v.flags.writeable = False
    return v


def layernorm_forward(x, g, b, eps=1e-5):
    """Normalise x (..., C) over its last axis, then scale by g (C,) and shift by b (C,)."""
    xhat = x - row_mean(x)  # centred ...
    std = np.sqrt(np.vecdot(xhat, xhat)[..., None] / x.shape[-1] + eps)  # (..., 1)
    xhat /= std  # ... and scaled to unit variance
    out = xhat * g
    out += b
    return out, (xhat, g, std)


def layernorm_backward(dout, cache):
    """dout (..., C) -> dx (..., C), dg (C,), db (C,)."""
    xhat, g, std = cache
    C = xhat.shape[-1]
    dg = column_sum((dout * xhat).reshape(-1, C))
    db = column_sum(dout.reshape(-1, C))
    dxhat = dout * g
    # xhat depends on x through the mean and the variance: subtract both projections
    dx = dxhat - row_mean(dxhat)
    dx -= xhat * (np.vecdot(dxhat, xhat)[..., None] / C)
    dx /= std
    return dx, dg, db


GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def gelu_forward(x):
    """GELU, tanh approximation (GPT-2, BERT): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).

    Written in place on as few temporaries as possible: this is the largest elementwise
    operation of the model. (x**3 in float32 is 50× slower than x*x*x in NumPy.)
    """
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
    """dy/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·du/dx, with du/dx = √(2/π)·(1 + 3·0.044715·x²)."""
    x, t = cache
    du = x * x
    du *= 3 * GELU_A * GELU_C
    du += GELU_C  # du/dx
    g = t * t
    np.subtract(1.0, g, out=g)  # 1 − t² = tanh'(u)
    g *= x
    g *= du
    g += t
    g += 1.0
    g *= 0.5  # dy/dx
    g *= dout
    return g


def dropout_forward(x, p, rng):
    """Inverted dropout: zero each entry with probability p, scale the rest by 1/(1 − p).

    p == 0 (evaluation) is the identity and keeps no mask. The draw compares 16 random bits
    with round(p·2¹⁶), three times cheaper than uniform floats, so the rate is p to within
    2⁻¹⁷ (0.100006 for 0.1) and the scale uses that exact rate. The mask is kept as floats,
    0 or the scale: multiplying by a bool array costs twice as much, and it is used twice.
    """
    if p == 0.0:
        return x, None
    threshold = round(p * 65536)
    bits = rng.bit_generator.random_raw(-(-x.size // 4)).view(np.uint16)[: x.size]
    mask = (bits >= threshold).reshape(x.shape).astype(x.dtype)
    mask *= 65536 / (65536 - threshold)  # 0 or 1/(1 − rate)
    return x * mask, mask


def dropout_backward(dout, mask):
    return dout if mask is None else dout * mask


def attention_forward(qkv, n_heads, causal, n_out=None):
    """Multi-head scaled dot-product attention.

    qkv (B, T, 3C), the fused projection -> y (B, T', C), cache, where only the first
    T' = n_out tokens (default all T) ask queries; every token is read as key and value.
    cache[-1] is the attention probabilities att (B, H, T', T): att[b, h, i, j] is how much
    token i reads token j.
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    hs = C // n_heads
    Tq = T if n_out is None else n_out
    q, k, v = qkv.reshape(B, T, 3, n_heads, hs).transpose(2, 0, 3, 1, 4)  # each (B, H, T, hs)
    q = q[:, :, :Tq] * (1.0 / math.sqrt(hs))  # (B, H, T', hs); scaling q is cheaper than scores
    att = q @ k.transpose(0, 1, 3, 2)  # (B, H, T', T) scores
    if causal:  # token i may read tokens 0..i only
        att[..., np.triu(np.ones((Tq, T), dtype=bool), k=1)] = -np.inf
    att -= att.max(axis=-1, keepdims=True)  # stable softmax; row max is finite (j=0)
    np.exp(att, out=att)
    att /= (att @ constant(T, 1.0, att.dtype))[..., None]  # row sums
    y = np.empty((B, Tq, n_heads, hs), dtype=qkv.dtype)
    np.matmul(att, v, out=y.transpose(0, 2, 1, 3))  # (B, H, T', hs), written as (B, T', H, hs)
    return y.reshape(B, Tq, C), (q, k, v, att)


def attention_backward(dy, cache):
    """dy (B, T', C) -> dqkv (B, T, 3C)."""
    q, k, v, att = cache  # q is already scaled by 1/√hs
    B, H, Tq, hs = q.shape
    T = k.shape[2]
    dy = dy.reshape(B, Tq, H, hs).transpose(0, 2, 1, 3)  # (B, H, T', hs)
    dqkv = np.empty((B, T, 3, H, hs), dtype=dy.dtype)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # views (B, H, T, hs) into dqkv
    np.matmul(att.transpose(0, 1, 3, 2), dy, out=dv)
    ds = dy @ v.transpose(0, 1, 3, 2)  # (B, H, T', T): d att
    # softmax backward, row by row: ds = att ⊙ (datt − Σ_j datt·att); masked entries have att = 0
    ds -= np.vecdot(ds, att)[..., None]
    ds *= att
    np.matmul(ds.transpose(0, 1, 3, 2), q, out=dk)  # scores = q_scaled·kᵀ: dk = dsᵀ·q_scaled ...
    np.matmul(ds, k, out=dq[:, :, :Tq])
    dq[:, :, :Tq] *= 1.0 / math.sqrt(hs)  # ... and dq = ds·k/√hs
    dq[:, :, Tq:] = 0.0  # tokens past T' asked no query
    return dqkv.reshape(B, T, 3 * H * hs)


# ---------------------------------------------------------------------------- the block


class TransformerBlock:
    """One pre-LN transformer block. `causal=True` for text; `causal=False` for images.

    Owns `params` and `grads` (same keys). `forward(x, train=True)` applies dropout and keeps
    the activations `backward` needs; evaluation (`train=False`) keeps none. `backward` adds
    into `grads` (call `zero_grad` between steps) and returns the gradient of its input.
    (The activations stay until the next forward replaces them: freeing them after backward
    only makes the allocator hand the pages back and fault them in again, a 20% slowdown.)
    `att` holds the attention probabilities (B, H, T', T) of the last forward, in either mode.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, causal=True, rng=None,
                 dtype=np.float32):
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.n_heads, self.dropout, self.causal = n_heads, dropout, causal
        self.rng = rng if rng is not None else np.random.default_rng(0)  # weights, then dropout
        C, F = d_model, d_ff

        def weight(fan_in, fan_out):  # N(0, 1/fan_in): keeps activations at unit scale
            return self.rng.normal(0.0, 1.0 / math.sqrt(fan_in), (fan_in, fan_out)).astype(dtype)

        self.params = {
            "ln1_g": np.ones(C, dtype), "ln1_b": np.zeros(C, dtype),
            "W_qkv": weight(C, 3 * C), "b_qkv": np.zeros(3 * C, dtype),
            "W_o": weight(C, C), "b_o": np.zeros(C, dtype),
            "ln2_g": np.ones(C, dtype), "ln2_b": np.zeros(C, dtype),
            "W_1": weight(C, F), "b_1": np.zeros(F, dtype),
            "W_2": weight(F, C), "b_2": np.zeros(C, dtype),
        }  # fmt: skip
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.att = self.cache = None

    def forward(self, x, train=False, n_out=None):
        """x (B, T, C) -> (B, T', C). Dropout, and activations kept for backward, only when
        train=True.

        With n_out, only the first T' = n_out tokens are updated and returned, still reading
        all T tokens: a ViT's last block needs only its [CLS] token (n_out=1).
        """
        p, drop = self.params, (self.dropout if train else 0.0)
        h, c_ln1 = layernorm_forward(x, p["ln1_g"], p["ln1_b"])
        qkv, c_qkv = linear_forward(h, p["W_qkv"], p["b_qkv"])  # (B, T, 3C)
        y, c_att = attention_forward(qkv, self.n_heads, self.causal, n_out)  # (B, T', C)
        a, c_o = linear_forward(y, p["W_o"], p["b_o"])
        a, m_o = dropout_forward(a, drop, self.rng)
        x = x[:, : a.shape[1]] + a  # residual, for the T' tokens that asked
        h, c_ln2 = layernorm_forward(x, p["ln2_g"], p["ln2_b"])
        f, c_1 = linear_forward(h, p["W_1"], p["b_1"])  # (B, T', F)
        g, c_gelu = gelu_forward(f)
        g, m_g = dropout_forward(g, drop, self.rng)
        m, c_2 = linear_forward(g, p["W_2"], p["b_2"])  # (B, T', C)
        m, m_2 = dropout_forward(m, drop, self.rng)
        self.att = c_att[-1]
        self.cache = (c_ln1, c_qkv, c_att, c_o, m_o, c_ln2, c_1, c_gelu, m_g, c_2, m_2) \
            if train else None
        return x + m

    def backward(self, dout):
        """dout (B, T', C) -> dx (B, T, C); adds the parameter gradients into `grads`."""
        if self.cache is None:
            raise RuntimeError("backward needs the activations of a forward with train=True")
        c_ln1, c_qkv, c_att, c_o, m_o, c_ln2, c_1, c_gelu, m_g, c_2, m_2 = self.cache
        gr = self.grads
        # MLP branch: x_out = x_mid + m, so dx_mid gets dout directly and through the branch
        dm = dropout_backward(dout, m_2)
        dg, dW, db = linear_backward(dm, c_2)
        gr["W_2"] += dW
        gr["b_2"] += db
        dg = dropout_backward(dg, m_g)
        df = gelu_backward(dg, c_gelu)
        dh, dW, db = linear_backward(df, c_1)
        gr["W_1"] += dW
        gr["b_1"] += db
        dx, dg_ln, db_ln = layernorm_backward(dh, c_ln2)
        gr["ln2_g"] += dg_ln
        gr["ln2_b"] += db_ln
        dx += dout  # residual
        # attention branch: x_mid = x + a
        da = dropout_backward(dx, m_o)
        dy, dW, db = linear_backward(da, c_o)
        gr["W_o"] += dW
        gr["b_o"] += db
        dqkv = attention_backward(dy, c_att)
        dh, dW, db = linear_backward(dqkv, c_qkv)
        gr["W_qkv"] += dW
        gr["b_qkv"] += db
        dx_in, dg_ln, db_ln = layernorm_backward(dh, c_ln1)
        gr["ln1_g"] += dg_ln
        gr["ln1_b"] += db_ln
        dx_in[:, : dx.shape[1]] += dx  # residual, for the T' tokens that asked
        return dx_in

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)
