"""compare_torch.py: the same model in PyTorch gives the same logits and gradients. Skipped
where PyTorch is not installed: it is never a dependency of the lab
(`uv run --with torch pytest tests/test_compare_torch.py` runs it)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import compare_torch


def test_numpy_and_pytorch_agree_in_float64():
    logits, grads = compare_torch.parity(torch, np.random.default_rng(0))
    assert logits < 1e-9 and grads < 1e-9
