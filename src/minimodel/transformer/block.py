"""The Phase 17 transformer block, in NumPy, with its backward pass written by hand.

Pre-LayerNorm, as in GPT-2 and ViT:

    x = x + dropout(attention(LN1(x)) @ W_o)
    x = x + dropout(dropout(gelu(LN2(x) @ W_1)) @ W_2)

The block composes forward/backward pairs of primitives, and its backward calls the same pairs
in reverse order. The primitives come from one of two modules with the same functions:
`layers.py`, the formulas to read, or `fast_layers.py`, the same results tuned for speed (the
default). Everything follows the dtype of the parameters: float32 to train, float64 to check
gradients.
"""

import math

import numpy as np

from minimodel.transformer import fast_layers, layers

PRIMITIVES = {"tuned": fast_layers, "reference": layers}


# ---------------------------------------------------------------------------- the block


class TransformerBlock:
    """One pre-LN transformer block. `causal=True` for text; `causal=False` for images.
    `mask`, a function (Tq, T) -> bool (Tq, T) True where query i must not read key j, replaces
    the causal one (layers.self_mask: each token reads only itself).

    Owns `params` and `grads` (same keys). `forward(x, train=True)` applies dropout and keeps
    the activations `backward` needs; evaluation (`train=False`) keeps none. `backward` adds
    into `grads` (call `zero_grad` between steps) and returns the gradient of its input.
    `att` holds the attention probabilities (B, H, Tq, T) of the last forward, in either mode.
    `primitives`: "tuned" (fast_layers.py, the default) or "reference" (layers.py).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, causal=True, rng=None,
                 dtype=np.float32, primitives="tuned", mask=None):
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        if primitives not in PRIMITIVES:
            raise ValueError(f"primitives={primitives!r} must be one of {', '.join(PRIMITIVES)}")
        self.n_heads, self.dropout, self.causal = n_heads, dropout, causal
        self.mask = mask or (layers.causal_mask if causal else None)
        self.ops = PRIMITIVES[primitives]
        self.rng = rng if rng is not None else np.random.default_rng(0)  # weights, then dropout
        C, F = d_model, d_ff

        def weight(fan_in, fan_out):  # N(0, 1/fan_in): keeps activations at unit scale
            return self.rng.normal(0.0, 1.0 / math.sqrt(fan_in), (fan_in, fan_out)).astype(dtype)

        self.params = {
            "ln1_gain": np.ones(C, dtype), "ln1_bias": np.zeros(C, dtype),
            "W_qkv": weight(C, 3 * C), "b_qkv": np.zeros(3 * C, dtype),
            "W_o": weight(C, C), "b_o": np.zeros(C, dtype),
            "ln2_gain": np.ones(C, dtype), "ln2_bias": np.zeros(C, dtype),
            "W_1": weight(C, F), "b_1": np.zeros(F, dtype),
            "W_2": weight(F, C), "b_2": np.zeros(C, dtype),
        }  # fmt: skip
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.att = self.cache = None

    def forward(self, x, train=False, n_queries=None):
        """x (B, T, C) -> (B, Tq, C). Dropout, and activations kept for backward, only when
        train=True.

        With n_queries, only the first Tq = n_queries tokens are updated and returned, still
        reading all T tokens: a ViT's last block needs only its [CLS] token (n_queries=1).
        """
        p, L, drop = self.params, self.ops, (self.dropout if train else 0.0)
        h, c_ln1 = L.layernorm_forward(x, p["ln1_gain"], p["ln1_bias"])
        qkv, c_qkv = L.linear_forward(h, p["W_qkv"], p["b_qkv"])  # (B, T, 3C)
        mask = None if self.mask is None else self.mask(n_queries or x.shape[1], x.shape[1])
        y, c_att = L.attention_forward(qkv, self.n_heads, mask, n_queries)  # (B, Tq, C)
        a, c_o = L.linear_forward(y, p["W_o"], p["b_o"])
        a, m_o = L.dropout_forward(a, drop, self.rng)
        x = x[:, : a.shape[1]] + a  # residual, for the Tq tokens that asked
        h, c_ln2 = L.layernorm_forward(x, p["ln2_gain"], p["ln2_bias"])
        f, c_1 = L.linear_forward(h, p["W_1"], p["b_1"])  # (B, Tq, F)
        u, c_gelu = L.gelu_forward(f)
        u, m_u = L.dropout_forward(u, drop, self.rng)
        m, c_2 = L.linear_forward(u, p["W_2"], p["b_2"])  # (B, Tq, C)
        m, m_2 = L.dropout_forward(m, drop, self.rng)
        self.att = c_att[-1]
        # (the activations stay until the next forward replaces them: freeing them after
        # backward only makes the allocator return the pages and fault them in again)
        self.cache = (c_ln1, c_qkv, c_att, c_o, m_o, c_ln2, c_1, c_gelu, m_u, c_2, m_2) \
            if train else None
        return x + m

    def backward(self, dout):
        """dout (B, Tq, C) -> dx (B, T, C); adds the parameter gradients into `grads`."""
        if self.cache is None:
            raise RuntimeError("backward needs the activations of a forward with train=True")
        c_ln1, c_qkv, c_att, c_o, m_o, c_ln2, c_1, c_gelu, m_u, c_2, m_2 = self.cache
        gr, L = self.grads, self.ops
        # MLP branch: x_out = x_mid + m, so dx_mid gets dout directly and through the branch
        dm = L.dropout_backward(dout, m_2)
        du, dW, db = L.linear_backward(dm, c_2)
        gr["W_2"] += dW
        gr["b_2"] += db
        du = L.dropout_backward(du, m_u)
        df = L.gelu_backward(du, c_gelu)
        dh, dW, db = L.linear_backward(df, c_1)
        gr["W_1"] += dW
        gr["b_1"] += db
        dx, dgain, dbias = L.layernorm_backward(dh, c_ln2)
        gr["ln2_gain"] += dgain
        gr["ln2_bias"] += dbias
        dx += dout  # residual
        # attention branch: x_mid = x + a
        da = L.dropout_backward(dx, m_o)
        dy, dW, db = L.linear_backward(da, c_o)
        gr["W_o"] += dW
        gr["b_o"] += db
        dqkv = L.attention_backward(dy, c_att)
        dh, dW, db = L.linear_backward(dqkv, c_qkv)
        gr["W_qkv"] += dW
        gr["b_qkv"] += db
        dx_in, dgain, dbias = L.layernorm_backward(dh, c_ln1)
        gr["ln1_gain"] += dgain
        gr["ln1_bias"] += dbias
        dx_in[:, : dx.shape[1]] += dx  # residual, for the Tq tokens that asked
        return dx_in

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)
