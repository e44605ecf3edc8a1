"""Evaluate a trained TinyViT on the test split: accuracy, per-class accuracy, confusion matrix.

    uv run python eval.py        # the checkpoint that train.py writes by default
    uv run python eval.py --checkpoint results/RUN/checkpoint.npz

Writes confusion_matrix.png beside the checkpoint and adds the evaluation to that folder's
manifest.json entry for the run.
"""

import argparse
from pathlib import Path

import numpy as np

from generate_icons import load_dataset, split
from minimodel.files import (
    LabError,
    atomic_write,
    check_writable,
    interrupts_deferred,
    run_cli,
    update_manifest,
)
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS
from train import LAB, TASKS, predict, task_labels
from vit import TinyViT, to_inputs


def confusion(y_true, y_pred, n):
    """(n, n) counts: row = true class, column = predicted class."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_accuracy(cm):
    return cm.diagonal() / np.maximum(cm.sum(axis=1), 1)


def factor_views(task, y_true, y_pred, names):
    """The confusion matrices to draw: the task's own, or for 300 classes one per factor."""
    if task != "full":
        return [(task, confusion(y_true, y_pred, len(names)), names)]
    factors = [("verb", len(TENSES) * len(PERSONS), len(VERBS), VERBS),
               ("tense", len(PERSONS), len(TENSES), TENSES),
               ("person", 1, len(PERSONS), PERSONS)]
    return [(name, confusion(y_true // div % n, y_pred // div % n, n), list(labels))
            for name, div, n, labels in factors]  # class_id = (verb·5 + tense)·3 + person


def save_confusion_plot(views, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [max(4.5, 0.42 * len(names) + 2.2) for _, _, names in views]
    fig, axes = plt.subplots(1, len(views), figsize=(sum(widths), max(widths) * 0.9),
                             width_ratios=widths, squeeze=False)
    for ax, (name, cm, names) in zip(axes[0], views):
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # row-normalised colour
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        n = len(names)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=9,
                            color="white" if rates[i, j] > 0.5 else "black")
        ax.set_xticks(range(n), names, rotation=45 if n > 3 else 0, ha="right" if n > 3
                      else "center", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set(xlabel="predicted", ylabel="true",
               title=f"{name}: {cm.trace() / cm.sum():.1%} of {cm.sum()}")
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def evaluate(checkpoint, data, task=None, log=print):
    """Evaluate a checkpoint on the test split; `task`, if given, must be the one it was
    trained for. Returns the accuracy and the confusion matrix."""
    model, meta = TinyViT.load(checkpoint)
    if meta.get("task") not in TASKS:
        raise LabError(f"{checkpoint}: unknown task {meta.get('task')!r} in the checkpoint; "
                       f"retrain it with train.py")
    if task is not None and task != meta["task"]:
        raise LabError(f"{checkpoint}: trained for task {meta['task']}, not {task}; train one "
                       f"with `train.py --task {task}` or drop --task")
    task = meta["task"]
    dataset = load_dataset(data)
    y, names = task_labels(dataset, task)
    if model.cfg.n_classes != len(names):
        raise LabError(f"{checkpoint}: head has {model.cfg.n_classes} classes, task {task} has "
                       f"{len(names)}; retrain it")
    _, test = split(dataset.labels)
    y_true, y_pred = y[test], predict(model, to_inputs(dataset.images[test]))
    cm = confusion(y_true, y_pred, len(names))
    acc = float((y_true == y_pred).mean())

    log(f"task {task}: test accuracy {acc:.1%} ({int(cm.trace())}/{len(test)})")
    if len(names) <= 15:
        log("per-class accuracy and confusion matrix (rows true, columns predicted):")
        for name, a, row in zip(names, per_class_accuracy(cm), cm):
            log(f"  {name:>22} {a:6.1%}  " + " ".join(f"{c:3d}" for c in row))
    views = factor_views(task, y_true, y_pred, names)
    if task == "full":
        log("accuracy of each factor read off the 300-class prediction: " + ", ".join(
            f"{name} {c.trace() / c.sum():.1%}" for name, c, _ in views))
    out = Path(checkpoint).parent
    record = {
        "test_accuracy": acc,
        "per_class_accuracy": {n: round(float(a), 4)
                               for n, a in zip(names, per_class_accuracy(cm))}
        if len(names) <= 15 else None,
        "factor_accuracy": {name: round(float(c.trace() / c.sum()), 4) for name, c, _ in views},
    }
    with interrupts_deferred():  # the plot and its manifest entry are written as one
        save_confusion_plot(views, out / "confusion_matrix.png",
                            f"TinyViT, task {task}: test accuracy {acc:.1%}")
        update_manifest(out / "manifest.json", record, "runs", meta.get("run", task), "eval")
    log(f"wrote {out / 'confusion_matrix.png'}")
    return acc, cm


def main(argv=None):
    ap = argparse.ArgumentParser(description="Evaluate a trained TinyViT on the test split.")
    ap.add_argument("--checkpoint", default=str(LAB / "checkpoint.npz"),
                    help="written by train.py (default: checkpoint.npz at the lab's top level)")
    ap.add_argument("--data", default="data", help="folder made by generate_icons.py")
    ap.add_argument("--task", choices=list(TASKS),
                    help="refuse a checkpoint trained for another task (default: its own)")
    args = ap.parse_args(argv)
    try:
        check_writable(Path(args.checkpoint).parent)  # confusion_matrix.png goes beside it
    except LabError as e:
        ap.error(f"--checkpoint {e}")
    evaluate(args.checkpoint, args.data, args.task)


if __name__ == "__main__":
    run_cli(main)
