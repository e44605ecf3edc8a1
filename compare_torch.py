"""The same TinyViT in PyTorch: same logits and gradients on the same weights, and both training
steps timed side by side in one run, on this machine.

    uv run --with torch python compare_torch.py        # PyTorch is never a dependency of the lab

Parity is checked in float64 with dropout off: the NumPy model's weights are copied into the
PyTorch one, and the logits and every parameter's gradient must agree to 1e-9. The timing is
the lab's recipe in float32 (batch 32, dropout 0.1, SGD with momentum), eager PyTorch on every
core against NumPy's two-thread DataParallel, in interleaved rounds; it reports medians and the
CPU, since the ratio depends on the machine.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python compare_torch.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from minimodel.files import LabError, run_cli
from minimodel.parallel import DataParallel, blas_info, cpu_count
from vit import SGD, TinyViT, ViTConfig, cross_entropy, patchify


def torch_model(torch, cfg, dropout):
    """TinyViT in PyTorch, layer for layer: pre-LN blocks, tanh GELU, [CLS], final LayerNorm."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.d_model
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, cfg.d_ff), nn.Linear(cfg.d_ff, d)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, cfg.n_heads, C // cfg.n_heads) \
                .permute(2, 0, 3, 1, 4)  # each (B, H, T, hs)
            att = torch.softmax(q @ k.transpose(-1, -2) / (C // cfg.n_heads) ** 0.5, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
            x = x + self.drop(self.o(y))
            return x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.ln2(x)),
                                                              approximate="tanh"))))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.d_model
            self.patch = nn.Linear(cfg.patch_dim, d)
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.zeros(1, cfg.n_patches + 1, d))
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_blocks))
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, cfg.n_classes)
            self.drop = nn.Dropout(dropout)

        def forward(self, patches):  # (B, N, P·P·C), patchified as the NumPy model does
            tok = self.patch(patches)
            x = torch.cat([self.cls.expand(len(tok), -1, -1), tok], dim=1) + self.pos
            x = self.drop(x)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x[:, 0]))

    return ViT()


def pairs(model, net):
    """(NumPy name, PyTorch parameter, transpose?) for every tensor of the two models."""
    out = [("W_patch", net.patch.weight, True), ("b_patch", net.patch.bias, False),
           ("cls", net.cls, False), ("pos", net.pos, False), ("ln_gain", net.ln.weight, False),
           ("ln_bias", net.ln.bias, False), ("W_head", net.head.weight, True),
           ("b_head", net.head.bias, False)]
    for i, b in enumerate(net.blocks):
        for name, p, t in (("ln1_gain", b.ln1.weight, 0), ("ln1_bias", b.ln1.bias, 0),
                           ("W_qkv", b.qkv.weight, 1), ("b_qkv", b.qkv.bias, 0),
                           ("W_o", b.o.weight, 1), ("b_o", b.o.bias, 0),
                           ("ln2_gain", b.ln2.weight, 0), ("ln2_bias", b.ln2.bias, 0),
                           ("W_1", b.fc1.weight, 1), ("b_1", b.fc1.bias, 0),
                           ("W_2", b.fc2.weight, 1), ("b_2", b.fc2.bias, 0)):
            out.append((f"blocks.{i}.{name}", p, bool(t)))
    assert len(out) == len(list(model.named_parameters())) == len(list(net.parameters()))
    return out


def copy_weights(torch, model, net):
    params = {name: p for name, p, _ in model.named_parameters()}
    with torch.no_grad():
        for name, p, t in pairs(model, net):
            p.copy_(torch.from_numpy(params[name].T if t else params[name]))


def parity(torch, rng):
    """Worst relative difference of logits and of every gradient, float64, dropout off."""
    cfg = ViTConfig(dropout=0.0)
    model = TinyViT(cfg, seed=1, dtype=np.float64)
    for _, p, _ in model.named_parameters():  # off the init: a zero head hides gradients
        p += rng.normal(size=p.shape) * 0.05
    net = torch_model(torch, cfg, 0.0).double()
    copy_weights(torch, model, net)
    x = rng.uniform(-1, 1, (8, 32, 32, 3))
    y = rng.integers(0, cfg.n_classes, 8)
    logits = model.forward(x, train=True)
    _, dlogits = cross_entropy(logits, y)
    model.zero_grad()
    model.backward(dlogits)
    t_logits = net(torch.from_numpy(patchify(x, cfg.patch_size)))
    torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(y)).backward()

    def rel(a, b):
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    grads = {name: g for name, _, g in model.named_parameters()}
    worst_grad = max(rel(grads[name], (p.grad.T if t else p.grad).numpy())
                     for name, p, t in pairs(model, net))
    return rel(logits, t_logits.detach().numpy()), worst_grad


def timing(torch, rounds, steps, rng):
    """Median ms per training step (batch 32, float32, dropout 0.1), interleaved rounds."""
    cfg = ViTConfig()
    x = rng.uniform(-1, 1, (32, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, cfg.n_classes, 32)
    model = TinyViT(cfg)
    opt = SGD(model)
    net = torch_model(torch, cfg, cfg.dropout)
    copy_weights(torch, model, net)
    t_opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    tx, ty = torch.from_numpy(patchify(x, cfg.patch_size).copy()), torch.from_numpy(y)
    torch.set_num_threads(cpu_count())
    blas = None

    def numpy_round(n):  # DataParallel sets BLAS to one thread per worker while it is open:
        with DataParallel(model, cross_entropy) as parallel:  # PyTorch's MKL must not see that
            for _ in range(n):
                parallel.train_step(x, y)
                opt.step(1e-3)
            return blas_info()

    def torch_round(n):
        for _ in range(n):
            t_opt.zero_grad()
            torch.nn.functional.cross_entropy(net(tx), ty).backward()
            t_opt.step()

    numpy_round(3)  # warm-up
    torch_round(3)
    times = {"numpy": [], "torch": []}
    for _ in range(rounds):
        for name, run in (("numpy", numpy_round), ("torch", torch_round)):
            t0 = time.perf_counter()
            blas = run(steps) or blas
            times[name].append((time.perf_counter() - t0) / steps * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}, blas


def cpu_name():
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv=None):
    ap = argparse.ArgumentParser(description="TinyViT in NumPy against the same model in "
                                 "PyTorch: parity of logits and gradients, and step times.")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default 7)")
    ap.add_argument("--steps", type=int, default=20, help="steps per round (default 20)")
    args = ap.parse_args(argv)
    if not (1 <= args.rounds <= 1000 and 1 <= args.steps <= 10_000):
        ap.error("--rounds must be in 1..1000 and --steps in 1..10000")
    try:
        import torch
    except ImportError:
        raise LabError("PyTorch is not installed here (it is never a dependency of the lab); "
                       "run `uv run --with torch python compare_torch.py`") from None
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    logit_err, grad_err = parity(torch, rng)
    ok = logit_err < 1e-9 and grad_err < 1e-9
    print(f"parity (float64, dropout off): logits {logit_err:.1e}, worst gradient {grad_err:.1e} "
          f"relative difference -> {'same' if ok else 'DIFFERENT'}")
    ms, blas = timing(torch, args.rounds, args.steps, rng)
    print(f"CPU: {cpu_name()}, {cpu_count()} cores; NumPy {np.__version__} ({blas['name']} "
          f"{blas['version']}, kernel {blas['kernel']}); PyTorch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"training step, batch 32, float32, median of {args.rounds} interleaved rounds of "
          f"{args.steps}: NumPy {ms['numpy']:.1f} ms, PyTorch eager {ms['torch']:.1f} ms "
          f"-> NumPy takes {ms['numpy'] / ms['torch']:.2f}× PyTorch's time")
    if not ok:
        raise LabError("the two models disagree: see the parity line above")


if __name__ == "__main__":
    run_cli(main)
