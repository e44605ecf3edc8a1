"""What to look at when a run goes wrong: the spec's debugging hints, measured every epoch.

- gradient norm of each part of the model (embedding, each block, head): a part whose gradient
  is zero has stopped learning, or stopped passing the signal on;
- how far each part moved in an epoch, ‖Δw‖ / ‖w‖: around 1e-2 is healthy early on, near 1 means
  the learning rate is too high, 1e-5 and down that the part is frozen (or the schedule is done);
- attention entropy of each block, mean over heads, queries and icons (those of the model's last
  evaluation chunk of validation icons): ln T (ln 65 here) is uniform attention, lower means the
  block picks tokens out;
- mean logit per class on the validation icons: one class far above the others is a collapse.
"""

import math

import numpy as np


def parts(model):
    """[(name, slice of flat_params)] for the embedding, each block and the head, in the order
    of model.named_parameters() (which is the order of the flat vectors)."""
    spans, start = {}, 0
    for name, p, _ in model.named_parameters():
        part = (f"block {name.split('.')[1]}" if name.startswith("blocks.") else
                "head" if name in ("ln_gain", "ln_bias", "W_head", "b_head") else "embedding")
        first, _ = spans.get(part, (start, start))
        spans[part] = (first, start + p.size)
        start += p.size
    order = ["embedding"] + [p for p in spans if p.startswith("block ")] + ["head"]
    return [(name, slice(*spans[name])) for name in order]


def gradient_norms(model, spans=None):
    """{part: ‖gradient‖} of the step whose gradients the model holds (spans: parts(model))."""
    return {name: float(np.linalg.norm(model.flat_grads[s]))
            for name, s in spans or parts(model)}


def update_ratios(model, before, spans=None):
    """{part: ‖w − w_before‖ / ‖w‖}: how far the part moved since `before` (a copy of
    flat_params, e.g. from the start of the epoch), relative to its size. Whatever the
    optimiser or schedule, this is what the steps did."""
    return {name: float(np.linalg.norm(model.flat_params[s] - before[s])
                        / max(np.linalg.norm(model.flat_params[s]), 1e-12))
            for name, s in spans or parts(model)}


def attention_entropy(att):
    """Mean entropy (nats) of the attention rows att (..., T), each a distribution over T keys."""
    logs = np.log(att, out=np.zeros_like(att), where=att > 0)  # 0·log 0 = 0
    return float(-(att * logs).sum(axis=-1).mean())


def block_entropies(model):
    """{block: mean attention entropy} of the model's last forward pass (each block keeps its
    attention probabilities, `att`): no extra pass is run."""
    return {f"block {i}": attention_entropy(b.att) for i, b in enumerate(model.blocks)}


def logit_means(logits, max_listed=30):
    """Mean logit of each output over the icons; for a head of more than `max_listed` outputs,
    the spread of those means (min, median, max)."""
    means = logits.mean(axis=0)
    if len(means) <= max_listed:
        return [round(float(m), 3) for m in means]
    return {"min": float(means.min()), "median": float(np.median(means)),
            "max": float(means.max())}


def figure(history, title, n_tokens):
    """diagnostics.png: gradient norms, how far each part moved and attention entropy per part
    over the epochs, and train against validation accuracy (the gap shaded where there is one)."""
    from matplotlib.ticker import MaxNLocator

    from minimodel.files import pyplot

    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = [
        (axes[0, 0], "grad_norm", "gradient norm (mean over the epoch's steps)", True),
        (axes[0, 1], "update_ratio", "move in the epoch / weight, ‖Δw‖ / ‖w‖", True),
        (axes[1, 0], "attention_entropy", "attention entropy (nats)", False),
    ]
    names = list(history[0]["grad_norm"])  # embedding, block 0.., head: one colour each
    colours = dict(zip(names, plt.cm.tab10(np.arange(len(names)))))
    for ax, key, label, log in panels:
        series = {name: np.array([h[key][name] for h in history]) for name in history[0][key]}
        positive = [v[v > 0].min() for v in series.values() if (v > 0).any()]
        floor = min(positive) / 100 if positive else 1e-12
        for name, values in series.items():
            dead = values <= 0
            ax.plot(epochs, np.where(dead, floor, values), "o-", ms=2.5, color=colours[name],
                    label=name + (" (0: nothing flows)" if log and dead.all() else ""))
        if log:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    ent = axes[1, 0]
    ent.axhline(math.log(n_tokens), color="gray", ls=":")
    ent.text(epochs[0], math.log(n_tokens), f" uniform over {n_tokens} tokens: ln {n_tokens}",
             va="bottom", fontsize=8, color="gray")
    ent.set_ylim(0, math.log(n_tokens) * 1.08)
    acc = axes[1, 1]
    # (a loop may not record the training accuracy; none is validated on train+val)
    train = np.array([100 * h.get("train_accuracy", np.nan) for h in history])
    acc.plot(epochs, train, "o-", ms=2.5, label="train (running, dropout on)")
    if history[0]["val_accuracy"] is not None:
        val = np.array([100 * h["val_accuracy"] for h in history])
        acc.plot(epochs, val, "s-", ms=2.5, label="validation")
        gap = train - val > 0.5  # shaded, and named in the legend, only where there is a gap
        if gap.any():
            acc.fill_between(epochs, val, train, where=gap, color="tab:red", alpha=0.2,
                             label="train above validation: overfitting")
    acc.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101))
    acc.grid(alpha=0.3)
    acc.legend(fontsize=7, loc="lower right")
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_title("is the signal reaching every part?", fontsize=10)
    axes[0, 1].set_title("how far does each part move? (the schedule ends near 0)", fontsize=10)
    axes[1, 0].set_title("does attention pick tokens out?", fontsize=10)
    acc.set_title("is it learning, or memorising?", fontsize=10)
    fig.suptitle(f"{title}: diagnostics")
    return fig
