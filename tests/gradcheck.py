"""Central differences in float64: the same gradient computed a second way."""

import numpy as np


def numerical_grad(f, x, h=1e-5):
    """d f() / d x for every entry of x (changed in place and restored); f returns a scalar."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a, b):
    """Worst entry-wise difference relative to the tensor's own scale (0 when both are 0)."""
    scale = np.abs(a).max() + np.abs(b).max()
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


TOL = 1e-6  # a correct derivative gives ~1e-8 here; a wrong one 1e-2 or more
