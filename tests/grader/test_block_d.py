"""Block D, training: cross-entropy and its gradient, SGD with momentum, the cosine schedule;
the split (generate_icons.py); the loop (shuffled batches, forward, loss, backward, a step at the
LR of the schedule, the held-out accuracy and a line an epoch) and its two plots. Tested through
what they do to a model, never how they are written. `uv run pytest -m block_d`."""

import io
import math
import re

import numpy as np
import pytest
from gradcheck import TOL, numerical_grad, rel_error

import generate_icons as gi
import train
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS, class_id
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


# --- the split -----------------------------------------------------------------------------------


def labels_of(n):
    """labels.json of n icons, as the spec's generator writes them (built here, not by Block B)."""
    counts = gi.samples_per_combo(n)
    return [{"filename": f"verb_{VERBS[v]}_tense_{TENSES[t]}_person_{PERSONS[p]}_{i}.png",
             "verb_id": v, "tense_id": t, "person_id": p, "class_id": class_id(v, t, p)}
            for v in range(20) for t in range(5) for p in range(3)
            for i in range(counts[class_id(v, t, p)])]


LABELS = labels_of(1000)


def test_the_split_holds_every_icon_once_20_percent_test_10_validation():
    odd = gi.stratified_split(labels_of(333), seed=0)
    assert (len(odd["test"]), len(odd["val"])) == (67, 33), \
        (f"333 icons split {len(odd['test'])} test / {len(odd['val'])} validation, not 67 / 33 "
         f"(20% and 10%, rounded)")
    parts = gi.stratified_split(LABELS, seed=0)
    assert set(parts) == {"train", "val", "test"}, \
        f"the split's parts are {sorted(parts)}, not train, val and test"
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == {"train": 700, "val": 100, "test": 200}, \
        (f"{sizes} of 1000 icons: the spec's 80/20 with a tenth of the 80 kept for "
         f"validation is 700/100/200")
    every = sorted(int(i) for part in parts.values() for i in part)
    assert every == list(range(1000)), "every icon must be in exactly one part"


def test_the_split_is_stratified_and_trains_on_every_combination():
    parts = gi.stratified_split(LABELS, seed=0)
    for part, per in (("test", 40), ("val", 20)):
        tenses = np.bincount([LABELS[i]["tense_id"] for i in parts[part]], minlength=5)
        assert np.abs(tenses - per).max() <= 1, \
            (f"the {part} icons per tense are {tenses.tolist()}, not {per} each: draw the same "
             f"share of every class")
    trained = {LABELS[i]["class_id"] for i in parts["train"]}
    assert len(trained) == 300, (f"{300 - len(trained)} combinations have no training icon: "
                                 f"the 300-class task could never learn them")


def test_the_split_follows_its_seed():
    a, b = gi.stratified_split(LABELS, seed=0), gi.stratified_split(LABELS, seed=0)
    assert {k: sorted(map(int, v)) for k, v in a.items()} == \
        {k: sorted(map(int, v)) for k, v in b.items()}, "the same seed must give the same split"
    other = gi.stratified_split(LABELS, seed=1)
    assert sorted(map(int, other["test"])) != sorted(map(int, a["test"])), \
        "another seed must draw other test icons"


# --- the training loop ---------------------------------------------------------------------------


class Spy:
    """A small float64 TinyViT as `train` sees it, watched: each training batch (the icons are
    numbered by their first pixel), the parameters before it, the gradient it stepped with,
    and the evaluation passes."""

    def __init__(self, n_classes=4, seed=0):
        self.model = TinyViT(tiny_config(n_classes=n_classes), seed=seed, dtype=np.float64)
        self.flat_params, self.flat_grads = self.model.flat_params, self.model.flat_grads
        self.batches, self.params, self.grads, self.evals = [], [], [], []

    def zero_grad(self):
        self.model.zero_grad()

    def forward(self, x, train=False):
        if not train:
            self.evals.append((x, self.model.forward(x)))
            return self.evals[-1][1]
        self.batches.append(np.rint(x[:, 0, 0, 0] * 1000).astype(int).tolist())
        self.params.append(self.flat_params.copy())
        return self.model.forward(x, train=True)

    def backward(self, dlogits):
        assert not self.flat_grads.any(), \
            "the gradients were not zeroed before this batch's backward: call model.zero_grad()"
        out = self.model.backward(dlogits)
        self.grads.append(self.flat_grads.copy())
        return out


def colours(n, seed):
    """n icons (8×8) whose class is their colour (red, green, blue or dark), numbered by their
    first pixel (i/1000)."""
    r = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = np.full((n, 8, 8, 3), -1.0)
    for i, c in enumerate(y):
        if c < 3:
            x[i, :, :, c] = 1.0
    x += r.normal(0, 0.1, x.shape)
    x[:, 0, 0, 0] = np.arange(n) / 1000
    return x, y


def run(epochs=3, n=22, batch_size=4, lr=0.05, seed=0, spy=None):
    spy = spy or Spy()
    x, y = colours(n, 1)
    xv, yv = colours(12, 2)
    lines = []
    history = train.train(spy, x, y, xv, yv, epochs, batch_size, lr, seed, log=lines.append)
    return spy, history, lines


def test_each_epoch_shuffles_every_training_icon_into_batches():
    spy, _, _ = run(epochs=3, n=22, batch_size=4)
    per_epoch = math.ceil(22 / 4)
    assert len(spy.batches) == 3 * per_epoch, \
        f"{len(spy.batches)} training batches in 3 epochs of 22 icons in 4s, not {3 * per_epoch}"
    orders = []
    for e in range(3):
        batches = spy.batches[e * per_epoch:(e + 1) * per_epoch]
        assert [len(b) for b in batches] == [4] * 5 + [2], \
            f"epoch {e + 1}'s batches have {[len(b) for b in batches]} icons, not 4 each, then 2"
        order = [i for b in batches for i in b]
        assert sorted(order) == list(range(22)), \
            f"epoch {e + 1} did not train on every icon once: {sorted(order)}"
        orders.append(order)
    assert orders[0] != list(range(22)) and orders[0] != orders[1] != orders[2], \
        "shuffle the training icons anew every epoch"


def test_every_step_is_sgd_with_momentum_on_the_cosine_schedule():
    """From the parameters before each step and the gradient it had: p' = p − lr·v, v = 0.9·v
    + g; the LR falls from the peak along half a cosine over the steps (or over the epochs)."""
    spy, _, _ = run(epochs=3, n=22, batch_size=4, lr=0.05)
    after = spy.params[1:] + [spy.flat_params.copy()]
    assert not np.array_equal(spy.params[0], after[-1]), \
        "training never changed model.flat_params: SGD.step must update it in place"
    v, lrs = np.zeros_like(spy.flat_params), []
    for k, (p, g, q) in enumerate(zip(spy.params, spy.grads, after)):
        v = 0.9 * v + g
        lr = float(np.vdot(p - q, v) / np.vdot(v, v))
        assert np.allclose(p - lr * v, q, atol=1e-10), \
            f"step {k + 1} did not move the parameters by −lr·v, v = 0.9·v + g (SGD with momentum)"
        lrs.append(lr)
    total, per_epoch = len(lrs), math.ceil(22 / 4)
    by_step = [0.05 * 0.5 * (1 + math.cos(math.pi * k / total)) for k in range(total)]
    by_epoch = [0.05 * 0.5 * (1 + math.cos(math.pi * (k // per_epoch) / 3)) for k in range(total)]
    assert np.allclose(lrs, by_step, rtol=1e-6) or np.allclose(lrs, by_epoch, rtol=1e-6), \
        (f"the steps' LRs were {np.round(lrs, 5).tolist()}: expected the cosine schedule from "
         f"0.05, step by step {np.round(by_step, 5).tolist()}")


def test_each_epoch_scores_the_held_out_icons_and_logs_a_line():
    spy, history, lines = run(epochs=3)
    assert len(history) == 3 and len(lines) == 3, \
        f"{len(history)} history entries and {len(lines)} log lines for 3 epochs, not 3 and 3"
    held_out = [logits for x, logits in spy.evals if len(x) == 12]
    assert len(held_out) == 3, "score all the held-out icons once an epoch, without dropout " \
                               "(model.forward(x_val), train=False)"
    _, yv = colours(12, 2)
    for e, (h, line, logits) in enumerate(zip(history, lines, held_out), 1):
        acc = float((logits.argmax(axis=1) == yv).mean())
        assert h["epoch"] == e and h["val_accuracy"] == pytest.approx(acc), \
            (f"epoch {e}: history says {h.get('val_accuracy')}, but the held-out icons were "
             f"{acc:.3f} right")
        numbers = [float(m) for m in re.findall(r"\d+\.?\d*", line)]
        assert any(abs(v - h["train_loss"]) < 0.01 for v in numbers), \
            f"epoch {e}'s line {line!r} does not show its training loss {h['train_loss']:.4f}"
        assert any(abs(v - acc) < 0.01 or abs(v - 100 * acc) < 1 for v in numbers), \
            f"epoch {e}'s line {line!r} does not show the held-out accuracy {acc:.1%}"


def test_the_loop_learns_and_repeats_itself():
    _, history, _ = run(epochs=12, n=32, batch_size=8, lr=0.1)
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.6 * losses[0] and history[-1]["val_accuracy"] >= 0.75, \
        (f"12 epochs on 32 coloured icons: loss {losses[0]:.3f} → {losses[-1]:.3f}, held-out "
         f"accuracy {history[-1]['val_accuracy']:.0%}")
    spy, _, _ = run(epochs=2, seed=3)
    again, _, _ = run(epochs=2, seed=3)
    other, _, _ = run(epochs=2, seed=4)
    assert spy.batches == again.batches and np.array_equal(spy.flat_params, again.flat_params), \
        "the same seed must train the same weights: shuffle with a generator seeded by `seed`"
    assert other.batches != spy.batches, "another seed must shuffle otherwise"


def plotted(fig):
    """Every series drawn on fig's Axes: lines' and scatters' y values."""
    ys = [np.asarray(line.get_ydata(), float) for ax in fig.axes for line in ax.get_lines()]
    ys += [np.asarray(c.get_offsets(), float)[:, 1] for ax in fig.axes for c in ax.collections
           if len(c.get_offsets())]
    return ys


def shows(fig, values):
    return any(len(y) == len(values) and (np.allclose(y, values, rtol=1e-3) or
                                          np.allclose(y, 100 * np.asarray(values), rtol=1e-3))
               for y in plotted(fig))


def test_the_plots_show_the_loss_and_the_accuracies():
    _, history, _ = run(epochs=3)
    figs = train.plots(history, "TinyViT, a test", 4, 0.5)
    assert set(figs) >= {"loss.png", "accuracy.png"}, \
        f"plots gave {sorted(figs)}, not loss.png and accuracy.png"
    steps = [s for h in history for s in h.get("step_losses", [])]
    assert shows(figs["loss.png"], [h["train_loss"] for h in history]) or \
        (steps and shows(figs["loss.png"], steps)), \
        "loss.png does not show the training loss of each epoch (or of each step)"
    assert shows(figs["accuracy.png"], [h["val_accuracy"] for h in history]), \
        "accuracy.png does not show the held-out accuracy of each epoch"
    for fig in figs.values():
        fig.savefig(io.BytesIO(), format="png")  # it draws
