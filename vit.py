"""TinyViT: a Vision Transformer in NumPy, forward and backward written by hand.

    image (B, 32, 32, 3) -> 64 patches of 48 -> linear -> [CLS] + 64 tokens -> + positions
    -> 4 x TransformerBlock(causal=False) -> LayerNorm([CLS]) -> head -> logits (B, n_classes)

Three switches of ViTConfig change one part each, for the lessons (docs/lessons.md):
`position="none"` adds no position embedding, `pool="mean"` feeds the head the mean of the patch
tokens (no [CLS] token), `attention="self"` lets each token read only itself.

The transformer block is the Phase 17 one, imported from src/minimodel: the only vision-specific
parts of this file are `patchify` and the patch embedding. `encode` returns the [CLS] features
without the head (the next lab's image encoder); `forward` adds the head. The layers' maths is
in src/minimodel/transformer/layers.py; the model runs on their tuned twins (fast_layers.py)
unless built with primitives="reference".

    python vit.py           prints the parameter table of the default config
    python vit.py --bench   times the training step and inference on this machine
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python vit.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from minimodel import bench, checkpoint
from minimodel.files import LabError, atomic_write, printable, run_cli
from minimodel.transformer.block import PRIMITIVES, TransformerBlock
from minimodel.transformer.layers import self_mask


@dataclass(frozen=True)
class ViTConfig:
    image_size: int = 32  # icons are image_size × image_size RGB
    patch_size: int = 4  # (32/4)² = 64 patches
    channels: int = 3
    d_model: int = 64
    n_heads: int = 4  # head size d_model / n_heads = 16
    n_blocks: int = 4
    d_ff: int = 256  # 4× expansion in the MLP
    dropout: float = 0.1
    n_classes: int = 5  # 5 tenses; 15 tense×person; 300 verb×tense×person
    position: str = "learned"  # or "none": no position embedding
    pool: str = "cls"  # what feeds the head: [CLS], or "mean" of the patch tokens (no [CLS])
    attention: str = "full"  # or "self": each token reads only itself

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in SWITCHES:
                if v not in SWITCHES[f.name]:
                    raise ValueError(f"{f.name}={v!r} must be one of "
                                     f"{', '.join(SWITCHES[f.name])}")
            elif f.name == "dropout":
                if type(v) not in (int, float) or not 0 <= v < 1:
                    raise ValueError(f"dropout={v!r} must be a number in [0, 1)")
            elif type(v) is not int or v < 1:
                raise ValueError(f"{f.name}={v!r} must be a positive integer")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of "
                             f"patch_size={self.patch_size}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        if self.attention == "self" and self.pool == "cls":
            raise ValueError("attention='self' lets no patch reach [CLS]; use pool='mean'")

    @property
    def n_patches(self):
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_dim(self):
        return self.patch_size * self.patch_size * self.channels

    @property
    def n_tokens(self):  # the patches, and [CLS] first when it feeds the head
        return self.n_patches + (self.pool == "cls")


SWITCHES = {"position": ("learned", "none"), "pool": ("cls", "mean"), "attention": ("full", "self")}


def tiny_config(**overrides):
    """A config small enough to gradient-check every entry of every tensor in seconds."""
    small = {"image_size": 8, "patch_size": 4, "d_model": 8, "n_heads": 2, "n_blocks": 2,
             "d_ff": 16, "dropout": 0.0, "n_classes": 3}
    return ViTConfig(**{**small, **overrides})


# ---------------------------------------------------------------------------- patchify


def patchify(x, P):
    """(B, H, W, C) images -> (B, N, P·P·C) patches, N = (H/P)·(W/P), in row-major patch order."""
    # BEGIN BLOCK C: (B, H/P, P, W/P, P, C), patch-grid axes together, flatten
    B, H, W, C = x.shape
    assert H % P == 0 and W % P == 0, f"image {H}×{W} is not divisible into {P}×{P} patches"
    x = x.reshape(B, H // P, P, W // P, P, C)  # (B, nh, P, nw, P, C)
    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)
    return x.reshape(B, (H // P) * (W // P), P * P * C)  # (B, N, P·P·C)
    # END BLOCK C


def unpatchify(patches, P, image_size, channels=3):
    """The inverse of patchify: (B, N, P·P·C) -> (B, H, W, C)."""
    # BEGIN BLOCK C: undo patchify: its reshapes and transpose, in reverse
    B = patches.shape[0]
    n = image_size // P
    x = patches.reshape(B, n, n, P, P, channels)  # (B, nh, nw, P, P, C)
    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, P, nw, P, C)
    return x.reshape(B, image_size, image_size, channels)
    # END BLOCK C


# ---------------------------------------------------------------------------- the model


def pack(dicts):
    """Copy every array of `dicts` (a list of {name: array}) into one flat vector and put, in
    each dict, a view of its slice in place of the array -> the vector."""
    entries = [(d, k) for d in dicts for k in d]
    flat = np.concatenate([d[k].ravel() for d, k in entries])
    start = 0
    for d, k in entries:
        shape, size = d[k].shape, d[k].size
        d[k] = flat[start:start + size].reshape(shape)
        start += size
    return flat


class TinyViT:
    """Patch embedding + [CLS] + positions + transformer blocks + LayerNorm + linear head."""

    def __init__(self, cfg: ViTConfig, seed=0, dtype=np.float32, primitives="tuned"):
        self.cfg, self.primitives = cfg, primitives
        self.rng = np.random.default_rng(seed)  # initial weights, then dropout masks
        # self.params, by name (d = d_model, T = n_tokens, K = n_classes): W_patch (P·P·C, d),
        # b_patch (d,), cls (d,) or (1, 1, d), pos (T, d) or (1, T, d), ln_gain and ln_bias
        # (d,), W_head (d, K), b_head (K,); "cls" only with pool="cls", "pos" only with
        # position="learned". The blocks' own parameters are theirs.
        # BEGIN BLOCK C: params: W_patch, b_patch, cls, pos, ln_gain, ln_bias, W_head, b_head
        d = cfg.d_model
        self.params = {
            "W_patch": self.rng.normal(0, 1 / math.sqrt(cfg.patch_dim), (cfg.patch_dim, d)),
            "b_patch": np.zeros(d),
        }
        if cfg.pool == "cls":
            self.params["cls"] = self.rng.normal(0, 0.02, (1, 1, d))
        if cfg.position == "learned":
            self.params["pos"] = self.rng.normal(0, 0.02, (1, cfg.n_tokens, d))
        self.params |= {
            "ln_gain": np.ones(d),
            "ln_bias": np.zeros(d),
            "W_head": np.zeros((d, cfg.n_classes)),  # zero head: first loss is ln(n_classes)
            "b_head": np.zeros(cfg.n_classes),
        }
        # END BLOCK C
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.blocks = [
            TransformerBlock(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, causal=False,
                             rng=self.rng, dtype=dtype, primitives=primitives,
                             mask=self_mask if cfg.attention == "self" else None)
            for _ in range(cfg.n_blocks)
        ]
        self.ops = PRIMITIVES[primitives]  # linear, LayerNorm and dropout outside the blocks
        # every parameter, and every gradient, is a view into one flat vector: the optimiser,
        # zero_grad and DataParallel's sum are then one NumPy call each, not one per tensor
        self.flat_params = pack([self.params] + [b.params for b in self.blocks])
        self.flat_grads = pack([self.grads] + [b.grads for b in self.blocks])

    def embed(self, images, train=False):
        """images (B, H, W, C) -> tokens (B, T, d): [CLS] first, then one token per patch
        (T = N+1; T = N without [CLS]), positions added, then dropout (cfg.dropout, in training
        only: self.ops.dropout_forward)."""
        # BEGIN BLOCK C: patchify, W_patch, [CLS] at index 0, + pos, dropout
        p, L = self.params, self.ops
        patches = patchify(images, self.cfg.patch_size)  # (B, N, P·P·C)
        x, self.c_patch = L.linear_forward(patches, p["W_patch"], p["b_patch"])  # (B, N, d)
        B, _, d = x.shape
        if "cls" in p:
            cls = np.broadcast_to(p["cls"], (B, 1, d))
            x = np.concatenate([cls, x], axis=1)  # (B, N+1, d)
        if "pos" in p:
            x += p["pos"]  # broadcast over B
        x, self.m_pos = L.dropout_forward(x, self.cfg.dropout if train else 0.0, self.rng)
        return x
        # END BLOCK C

    def encode(self, images, train=False):
        """images (B, H, W, C) in [-1, 1] -> features (B, d_model): of [CLS], or the mean of
        the patch tokens (pool="mean")."""
        # BEGIN BLOCK C: embed, the blocks, [CLS]'s row, LayerNorm
        x = self.embed(images, train)  # (B, T, d)
        for block in self.blocks[:-1]:
            x = block.forward(x, train)  # (B, T, d)
        if self.cfg.pool == "cls":
            # only [CLS] (token 0) is read from here on: the last block updates it alone
            pooled = self.blocks[-1].forward(x, train, n_queries=1)[:, 0]  # (B, d)
        else:
            pooled = self.blocks[-1].forward(x, train).mean(axis=1)  # (B, T, d) -> (B, d)
        p = self.params
        feat, self.c_ln = self.ops.layernorm_forward(pooled, p["ln_gain"], p["ln_bias"])
        return feat
        # END BLOCK C

    def encode_backward(self, dfeat):
        """dfeat (B, d_model) -> d images (B, H, W, C); adds into the encoder's grads.

        Add with `+=` (self.grads[name] += ...): each array of self.grads is a view into
        self.flat_grads, the one vector SGD reads. `self.grads[name] = ...` would put a new
        array in the dict that SGD never sees, and that parameter would never train."""
        # BEGIN BLOCK C: encode, backwards: += into self.grads (views of flat_grads)
        g, L = self.grads, self.ops
        dpooled, dgain, dbias = L.layernorm_backward(dfeat, self.c_ln)
        g["ln_gain"] += dgain
        g["ln_bias"] += dbias
        if self.cfg.pool == "cls":
            dx = dpooled[:, None]  # (B, 1, d): the last block's only output
        else:  # the mean of T tokens: each gets 1/T of the gradient
            T = self.cfg.n_tokens
            dx = np.repeat(dpooled[:, None] / T, T, axis=1)  # (B, T, d)
        for block in reversed(self.blocks):  # -> (B, T, d)
            dx = block.backward(dx)
        dx = L.dropout_backward(dx, self.m_pos)
        if "pos" in g:
            g["pos"] += dx.sum(axis=0, keepdims=True)
        if "cls" in g:
            g["cls"] += dx[:, :1].sum(axis=0, keepdims=True)
            dx = dx[:, 1:]  # (B, N, d): the patches' tokens
        dpatches, dW, db = L.linear_backward(dx, self.c_patch)
        g["W_patch"] += dW
        g["b_patch"] += db
        cfg = self.cfg
        return unpatchify(dpatches, cfg.patch_size, cfg.image_size, cfg.channels)
        # END BLOCK C

    def forward(self, images, train=False):
        """images (B, H, W, C) -> logits (B, n_classes)."""
        # BEGIN BLOCK C: encode, then the head
        feat = self.encode(images, train)
        logits, self.c_head = self.ops.linear_forward(feat, self.params["W_head"],
                                                      self.params["b_head"])
        return logits
        # END BLOCK C

    def backward(self, dlogits):
        """dlogits (B, n_classes) -> d images; adds into every parameter's gradient (zero_grad
        clears them)."""
        # BEGIN BLOCK C: the head backwards, then encode_backward
        dfeat, dW, db = self.ops.linear_backward(dlogits, self.c_head)
        self.grads["W_head"] += dW
        self.grads["b_head"] += db
        return self.encode_backward(dfeat)
        # END BLOCK C

    def named_parameters(self):
        """Yields (name, param, grad) for every trainable tensor, model first, then blocks."""
        for k, v in self.params.items():
            yield k, v, self.grads[k]
        for i, block in enumerate(self.blocks):
            for k, v in block.params.items():
                yield f"blocks.{i}.{k}", v, block.grads[k]

    def n_params(self):
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad(self):
        self.flat_grads.fill(0)

    def replica(self, seed):
        """A model that shares this one's parameter arrays but keeps its own activations,
        gradients and dropout generator: a worker for DataParallel."""
        twin = TinyViT(self.cfg, seed=seed, dtype=self.flat_params.dtype,
                       primitives=self.primitives)
        twin.params, twin.flat_params = self.params, self.flat_params
        for mine, theirs in zip(self.blocks, twin.blocks):
            theirs.params = mine.params
        return twin

    # ------------------------------------------------------------------------ checkpoints

    def write(self, f, meta=None):
        """Write every parameter, the config and `meta` (a JSON-able dict) to the file object f,
        as an .npz archive (no Python objects: loading it can never run code)."""
        checkpoint.write(f, {name: p for name, p, _ in self.named_parameters()},
                         asdict(self.cfg), meta)

    def save(self, path, meta=None):
        """`write` to a temporary file beside `path`, then move it into place: a crash never
        leaves a half-written checkpoint."""
        atomic_write(path, lambda f: self.write(f, meta))

    @classmethod
    def load(cls, path, expect: ViTConfig | None = None):
        """Read a checkpoint written by `save` -> (model, meta), refusing one for another config
        than `expect`. minimodel.checkpoint checks the file before anything large is built."""

        def make_config(stored):  # (checkpoints from before the switches have none: defaults)
            cfg = ViTConfig(**{f.name: stored[f.name] for f in fields(ViTConfig)
                               if f.name in stored or f.name not in SWITCHES})
            if expect is not None and cfg != expect:
                diff = ", ".join(f"{k}={v} (expected {getattr(expect, k)})"
                                 for k, v in asdict(cfg).items() if getattr(expect, k) != v)
                raise LabError(f"{printable(path)}: checkpoint is for another config: {diff}")
            return cfg

        return checkpoint.read(path, make_config, n_parameters, cls)


def n_parameters(cfg):
    """The parameter count of a config, without building it (TinyViT.n_params() of a model)."""
    d, F, K = cfg.d_model, cfg.d_ff, cfg.n_classes
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * F + F) + (F * d + d)
    cls = d * (cfg.pool == "cls")
    pos = cfg.n_tokens * d * (cfg.position == "learned")
    return cfg.patch_dim * d + d + cls + pos + cfg.n_blocks * block + 2 * d + d * K + K



# ---------------------------------------------------------------------------- training helpers


def to_inputs(images):
    """uint8 icons (B, H, W, 3) -> float32 in [-1, 1], the scale the model is trained on."""
    x = images.astype(np.float32)
    x /= 127.5
    x -= 1.0
    return x


def cross_entropy(logits, y, groups=None):
    """Mean softmax cross-entropy. logits (B, K), y (B,) ints -> loss, dlogits (B, K).

    With `groups` (sizes summing to K) the logits are read as one softmax per group and y is
    (B, len(groups)): the loss is the sum of the groups' losses. That is a factorised head,
    e.g. groups (20, 5, 3) for verb, tense and person.
    """
    if groups is not None:
        parts = [cross_entropy(part, y[:, i])
                 for i, part in enumerate(np.split(logits, np.cumsum(groups)[:-1], axis=1))]
        return sum(loss for loss, _ in parts), np.concatenate([d for _, d in parts], axis=1)
    # BEGIN BLOCK D: mean -log softmax of the true class; its gradient
    B = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (B, K) log-softmax
    loss = -logp[np.arange(B), y].mean()
    dlogits = np.exp(logp)  # softmax
    dlogits[np.arange(B), y] -= 1.0
    return float(loss), dlogits / B
    # END BLOCK D


class SGD:
    """SGD with momentum: v = μ·v + g; p -= lr·v (PyTorch's convention)."""

    def __init__(self, model, momentum=0.9):
        self.p, self.g = model.flat_params, model.flat_grads  # every tensor at once
        self.momentum = momentum
        self.v = np.zeros_like(self.p)

    def step(self, lr):
        # BEGIN BLOCK D: v = momentum·v + g; p -= lr·v
        self.v *= self.momentum
        self.v += self.g
        self.p -= lr * self.v
        # END BLOCK D


# ---------------------------------------------------------------------------- main


def print_parameter_table(cfg):
    model = TinyViT(cfg)
    block_params = model.blocks[0].params
    rows = [(k, v.shape, v.size) for k, v in model.params.items()]
    rows += [(f"per block: {k}", v.shape, v.size) for k, v in block_params.items()]
    print(f"TinyViT {asdict(cfg)}")
    for name, shape, size in rows:
        print(f"  {name:<20} {shape!s:<14} {size:>9,}")
    per_block = sum(v.size for v in block_params.values())
    print(f"  {'one block':<35} {per_block:>9,}")
    print(f"  {f'{cfg.n_blocks} blocks':<35} {cfg.n_blocks * per_block:>9,}")
    print(f"  {'total':<35} {model.n_params():>9,}")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="TinyViT: print the parameter table of a config, or benchmark it.")
    ap.add_argument("--n-classes", type=int, default=5, help="size of the head (default 5)")
    ap.add_argument("--bench", action="store_true",
                    help="time the training step (batch 32) and inference (batch 256)")
    ap.add_argument("--bench-steps", type=int, default=20, help=argparse.SUPPRESS)  # tests
    args = ap.parse_args(argv)
    if args.n_classes < 1:
        ap.error(f"--n-classes must be positive, got {args.n_classes}")
    if args.bench:
        cfg = ViTConfig(n_classes=args.n_classes)
        model = TinyViT(cfg)
        bench.run(model, SGD(model), cross_entropy, steps=args.bench_steps,
                  repeats=7 if args.bench_steps >= 20 else 1)
    else:
        print_parameter_table(ViTConfig(n_classes=args.n_classes))


if __name__ == "__main__":
    run_cli(main)
