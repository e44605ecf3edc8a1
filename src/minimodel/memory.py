"""How much memory a training will take at its peak, estimated from its config before anything is
built, and how much the machine has free (Linux, macOS, Windows; None where it cannot tell).

The estimate counts the float32 arrays the code keeps (docs/engineering.md, "Memory"): what
each of the data-parallel shards keeps for backward, backward's temporaries, the attention maps an
evaluation keeps, the parameters' copies and the icons, plus the interpreter and its libraries.
It was checked against measured peaks (the table in docs/engineering.md; a test with
tracemalloc).
"""

import ctypes
import math
import os
import subprocess
import sys
from pathlib import Path

FLOAT = 4  # bytes: the lab trains in float32
BASE = 100 * 2**20  # Python, NumPy, Pillow and matplotlib loaded, the figures drawn
SHARDS = 2  # parallel.DataParallel's two half-batches, each with its own activations
EVAL_CHUNK = 32  # parallel.DataParallel.forward: icons a shard evaluates at once


def block_floats(cfg, b, tq=None):
    """What one block keeps for backward on b icons (Tq queries; all T by default)."""
    T, C, F = cfg.n_tokens, cfg.d_model, cfg.d_ff
    tq = T if tq is None else tq
    drop = cfg.dropout > 0
    return (b * T * 5 * C  # LN1's normalised input and output, q·k·v
            + b * tq * (C * (4 + 2 * drop) + F * (3 + drop))  # q, y, LN2's two, MLP (+ masks)
            + b * cfg.n_heads * tq * T)  # the attention probabilities


def embedding(cfg, b):
    """The patches of b icons, and the embedding's dropout mask."""
    return b * cfg.image_size ** 2 * cfg.channels + b * cfg.n_tokens * cfg.d_model


def activations(cfg, b):
    """One shard's activations kept for backward, b icons: the embedding's and the blocks' (the
    last one with [CLS] computes [CLS]'s row only)."""
    last = block_floats(cfg, b, 1 if cfg.pool == "cls" else None)
    return embedding(cfg, b) + (cfg.n_blocks - 1) * block_floats(cfg, b) + last


def shard_peak(cfg, b):
    """One shard's floats at its peak. In training: its activations, and on top the largest of
    a forward's (which builds a part's new activations while its old ones live: the embedding's
    and a block's, GELU's output, and the residual stream, three b·T·C) and backward's
    temporaries (the attention's gradient and dq·dk·dv, or GELU's four b·T·F). In an
    evaluation (EVAL_CHUNK icons at once, no activations kept): every block's last attention
    probabilities and one block's forward."""
    T, C, F, H = cfg.n_tokens, cfg.d_model, cfg.d_ff, cfg.n_heads
    stream = 3 * b * T * C
    forward = embedding(cfg, b) + block_floats(cfg, b) + b * T * F + stream
    backward = stream + max(b * H * T * T + 5 * b * T * C, 4 * b * T * F + 2 * b * T * C)
    one_block = block_floats(cfg, EVAL_CHUNK)
    kept = (cfg.n_blocks - (cfg.pool == "cls")) * EVAL_CHUNK * H * T * T
    return max(activations(cfg, b) + max(forward, backward, one_block), kept + one_block)


def training_peak(cfg, batch, n_icons, n_params):
    """Bytes a training of `cfg` at `batch` icons a step on a dataset of n_icons takes at its
    peak: the shards, six copies of the n_params parameters (weights, two shards' gradients,
    momentum, an epoch's start, a spare), the icons (uint8 and float32), and BASE."""
    b = math.ceil(batch / SHARDS)
    pixels = cfg.image_size ** 2 * cfg.channels
    return (BASE + FLOAT * (SHARDS * shard_peak(cfg, b) + 6 * n_params)
            + n_icons * pixels * (1 + FLOAT))


def largest_batch(fits, batch):
    """The largest batch size ≤ batch for which fits(size) holds (0 if none): bisection."""
    lo, hi = 0, batch
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def free_memory():
    """The memory this process could take without swapping, in bytes, or None if the OS does not
    say: MemAvailable (Linux, and a cgroup's limit when lower), the available physical memory
    (Windows), the physical memory (macOS, which compresses and swaps rather than report what is
    available)."""
    try:
        if sys.platform.startswith("linux"):
            return _linux()
        if sys.platform == "win32":
            return _windows()
        if sys.platform == "darwin":
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True,
                                 timeout=5, check=True).stdout
            return int(out)
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    try:  # any other POSIX: the physical memory
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _linux(proc=Path("/proc"), cgroups=Path("/sys/fs/cgroup")):
    """MemAvailable, or less where this process's cgroup (a container, a job scheduler) has a
    memory limit: cgroup v2 (memory.max) or v1 (memory.limit_in_bytes), less what it uses."""
    info = dict(line.split(":", 1) for line in (proc / "meminfo").read_text().splitlines()
                if ":" in line)
    free = int(info["MemAvailable"].split()[0]) * 1024
    try:
        groups = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return free
    for line in groups:  # "0::/path" (v2), "4:memory:/path" (v1)
        _, controllers, path = line.split(":", 2)
        files = (("memory.max", "memory.current") if controllers == "" else
                 ("memory.limit_in_bytes", "memory.usage_in_bytes")
                 if "memory" in controllers.split(",") else None)
        folder = cgroups / ("" if controllers == "" else "memory") / path.lstrip("/")
        try:
            limit, used = ((folder / f).read_text().strip() for f in files or ())
            free = min(free, int(limit) - int(used))
        except (OSError, ValueError):  # no such files, or "max": no limit
            pass
    return free


def _windows():
    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong),
                    ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong),
                    ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatus(dwLength=ctypes.sizeof(MemoryStatus))
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        raise OSError("GlobalMemoryStatusEx failed")
    return status.ullAvailPhys


def gigabytes(n):
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
