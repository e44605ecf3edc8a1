"""Block D, the training step: cross-entropy and its gradient, SGD with momentum, the cosine
schedule, and the loss falling on a small batch. `uv run pytest -m block_d`."""

import math

import numpy as np
import pytest
from gradcheck import TOL, numerical_grad, rel_error

from train import cosine_lr
from vit import SGD, TinyViT, cross_entropy, tiny_config

pytestmark = pytest.mark.block_d
rng = np.random.default_rng(0)


def test_cross_entropy_value_and_gradient():
    logits, y = rng.normal(size=(4, 5)), np.array([0, 3, 1, 4])
    loss, dlogits = cross_entropy(logits, y)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(4), y].mean()), \
        "the loss must be the mean over the batch of −log softmax(logits)[true class]"
    err = rel_error(dlogits, numerical_grad(lambda: cross_entropy(logits, y)[0], logits))
    assert err < TOL, f"dlogits is off by {err:.1e} (relative) from central differences " \
                      f"of the loss: (softmax − one-hot) / B"
    assert cross_entropy(np.zeros((3, 5)), np.array([0, 1, 2]))[0] == pytest.approx(
        math.log(5)), "equal logits over 5 classes must give a loss of ln 5"


@pytest.mark.parametrize("true", [0, 1], ids=["huge logit on the true class",
                                              "huge logit on a wrong class"])
def test_cross_entropy_is_stable_for_huge_logits(true):
    with np.errstate(all="ignore"):
        loss, dlogits = cross_entropy(np.array([[1000.0, 0.0, -5.0]]), np.array([true]))
    want = 0.0 if true == 0 else 1000.0
    assert math.isfinite(loss) and np.isfinite(dlogits).all(), \
        ("a logit of 1000 overflowed exp(): subtract each row's largest logit before exp "
         "(log-softmax is unchanged by it)")
    assert loss == pytest.approx(want, abs=1e-6), f"loss {loss}, expected {want}"


class Params:
    """The least an optimiser needs: one parameter vector and its gradient."""

    def __init__(self):
        self.flat_params, self.flat_grads = np.array([1.0, -2.0]), np.zeros(2)


def test_sgd_with_momentum_at_a_changing_learning_rate():
    """v = μ·v + g; p −= lr·v, with the LR of each step (the cosine schedule changes it)."""
    model = Params()
    opt = SGD(model, momentum=0.9)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    model.flat_grads[:] = g1
    opt.step(0.1)
    assert not np.array_equal(model.flat_params, [1.0, -2.0]), \
        ("model.flat_params did not change: update it in place (self.p -= ...), for the "
         "model's parameters are views into it; `self.p = self.p - ...` makes a new array")
    assert np.allclose(model.flat_params, [1.0, -2.0] - 0.1 * g1), \
        "the first step from rest must be p − lr·g"
    model.flat_grads[:] = g2
    opt.step(0.05)
    want = np.array([1.0, -2.0]) - 0.1 * g1 - 0.05 * (0.9 * g1 + g2)
    assert np.allclose(model.flat_params, want), \
        (f"after two steps at LR 0.1 then 0.05, got {model.flat_params}, expected {want}: "
         f"v = 0.9·v + g, then p −= lr·v (the LR multiplies the velocity, not the gradient "
         f"inside it)")


def test_cosine_schedule():
    assert cosine_lr(0, 100, 0.1) == pytest.approx(0.1), "step 0 must run at the peak LR"
    assert cosine_lr(50, 100, 0.1) == pytest.approx(0.05), "halfway, the LR must be half"
    assert 0 <= cosine_lr(99, 100, 0.1) < 1e-4, "the last step's LR must be near 0"
    assert all(cosine_lr(s, 100, 1.0) >= cosine_lr(s + 1, 100, 1.0) for s in range(99)), \
        "the LR must never rise: half a cosine, from lr down to 0"


def test_the_loss_falls_on_a_small_batch():
    """A small model, 16 images whose class is their colour (red, green, blue or dark): 60 steps
    of SGD with momentum on the cosine schedule must at least halve the loss."""
    model = TinyViT(tiny_config(n_classes=4))
    y = np.arange(16) % 4
    x = np.full((16, 8, 8, 3), -1.0, dtype=np.float32)
    for i, c in enumerate(y):
        if c < 3:
            x[i, :, :, c] = 1.0
    x += rng.normal(0, 0.1, x.shape).astype(np.float32)
    opt = SGD(model, momentum=0.9)
    losses = []
    for step in range(60):
        model.zero_grad()
        loss, dlogits = cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits)
        opt.step(cosine_lr(step, 60, 0.1))
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0], f"the loss went {losses[0]:.3f} → {losses[-1]:.3f}"
