"""Evaluate a trained TinyViT: accuracy, per-class accuracy, confusion matrix, and where its
[CLS] token looks.

    uv run python eval.py        # the checkpoint that train.py writes by default, on its test icons
    uv run python eval.py --checkpoint results/RUN/checkpoint.npz
    uv run python generate_icons.py --out fresh --seed 7 --manifest fresh/manifest.json
    uv run python eval.py --data fresh --all     # every icon of a folder the model never saw

By default it scores the test icons that train.py held out, read from the data folder's
splits.json, and refuses a data folder other than the one the checkpoint was trained on. It writes
confusion_matrix.png and cls_attention.png beside the checkpoint and adds the evaluation to that
folder's manifest.json entry for the run. With --all it scores every icon of --data instead and
records the result in the manifest (as "eval_all"), drawing no plots.
"""

import argparse
from pathlib import Path

import numpy as np

from minimodel.data import SIZE, SPLITS, load_dataset
from minimodel.files import (
    LabError,
    Outputs,
    check_writable,
    figure_writer,
    printable,
    pyplot,
    run_cli,
)
from minimodel.grammar.tasks import FACTORS, HEADS, TASKS, Task
from minimodel.grammar.verbs import TENSES
from minimodel.parallel import DataParallel
from vit import TinyViT, to_inputs

LAB = Path(__file__).resolve().parent


def confusion(y_true, y_pred, n):
    """(n, n) counts: row = true class, column = predicted class."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_accuracy(cm):
    return cm.diagonal() / np.maximum(cm.sum(axis=1), 1)


def factor_views(task, y_true, y_pred):
    """The confusion matrices to draw: the task's own when it reads (≤ 15 classes), else one
    per factor, read off the class ids (for 300 classes: verb 20×20, tense 5×5, person 3×3)."""
    if len(task.class_names) <= 15:
        return [(task.name, confusion(y_true, y_pred, len(task.class_names)), task.class_names)]
    true, pred = np.unravel_index(y_true, task.sizes), np.unravel_index(y_pred, task.sizes)
    return [(f, confusion(t, p, len(FACTORS[f])), list(FACTORS[f]))
            for f, t, p in zip(TASKS[task.name], true, pred)]


def confusion_figure(views, title):
    plt = pyplot()
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
    return fig


def cls_attention(model, image):
    """Where [CLS] looks in one image: (8, 8) maps of the last block's attention (heads
    averaged) and of the attention rollout through all blocks (Abnar & Zuidema, 2020)."""
    model.forward(image[None])  # evaluation mode; every block keeps its last `att`
    n = model.cfg.image_size // model.cfg.patch_size
    rollout = np.eye(model.cfg.n_patches + 1)
    for block in model.blocks:  # the last block's att has [CLS]'s row only: (1, H, 1, T)
        a = block.att[0].mean(axis=0)  # (T', T), heads averaged
        a = a + np.eye(*a.shape)  # the residual path carries each token on
        rollout = (a / a.sum(axis=1, keepdims=True)) @ rollout
    last = model.blocks[-1].att[0].mean(axis=0)[0]  # (T,)
    return last[1:].reshape(n, n), rollout[0, 1:].reshape(n, n)


def attention_figure(model, images, labels):
    """One test icon per tense: the icon, then the two attention maps over it."""
    plt = pyplot()
    def pick(t):  # a different verb and person on each row, where the test set has them
        ranked = sorted((lab["verb_id"] != 4 * t, lab["person_id"] != t % 3, i)
                        for i, lab in enumerate(labels) if lab["tense_id"] == t)
        return ranked[0][2]

    picks = [pick(t) for t in range(len(TENSES))]
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.2, 2.4 * len(picks)))
    size = model.cfg.image_size
    for row, i in zip(axes, picks):
        last, rollout = cls_attention(model, to_inputs(images[i]))
        row[0].imshow(images[i], interpolation="nearest")
        row[0].set_title(labels[i]["filename"].removesuffix(".png").replace("_", " ")
                         .replace("verb ", "").replace(" tense ", "\n").replace(" person ", " · "),
                         fontsize=8)
        for ax, att, name in ((row[1], last, "last block"), (row[2], rollout, "rollout")):
            ax.imshow(images[i], interpolation="nearest")
            ax.imshow(att, cmap="inferno", alpha=0.65, interpolation="nearest",
                      extent=(-0.5, size - 0.5, size - 0.5, -0.5))  # 8×8 patches over 32×32
            ax.set_title(f"[CLS] attention: {name}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Where [CLS] looks: bright patches get more attention\n"
                 "(each map scaled to its own maximum)", fontsize=10)
    return fig


def load_checkpoint(checkpoint, task=None):
    """The model and its Task, checked against each other -> (model, meta, task)."""
    model, meta = TinyViT.load(checkpoint)
    head, split_name = meta.get("head", "flat"), meta.get("split", "stratified")
    if meta.get("task") not in TASKS or head not in HEADS or split_name not in SPLITS:
        raise LabError(f"{checkpoint}: unknown task, head or split in the checkpoint "
                       f"({meta.get('task')!r}, {head!r}, {split_name!r}); retrain it")
    if task is not None and task != meta["task"]:
        raise LabError(f"{checkpoint}: trained for task {meta['task']}, not {task}; train one "
                       f"with `train.py --task {task}` or drop --task")
    task = Task(meta["task"], head)
    if (model.cfg.image_size, model.cfg.channels) != (SIZE, 3):
        raise LabError(f"{printable(checkpoint)}: made for {model.cfg.image_size}×"
                       f"{model.cfg.image_size}×{model.cfg.channels} images, not the lab's "
                       f"{SIZE}×{SIZE} RGB icons; retrain it with train.py")
    if model.cfg.n_classes != task.n_outputs:
        raise LabError(f"{checkpoint}: head has {model.cfg.n_classes} outputs, task "
                       f"{task.name} with a {head} head has {task.n_outputs}; retrain it")
    return model, meta, task


def score(model, task, dataset, idx):
    """-> (true class ids, predicted class ids) of the icons idx of the dataset."""
    y_true = task.classes(task.targets(dataset))[idx]
    with DataParallel(model) as parallel:  # evaluation on both cores
        y_pred = task.decode(parallel.forward(to_inputs(dataset.images[idx])))
    return y_true, y_pred


def evaluate(checkpoint, data, task=None, all_icons=False, log=print):
    """Evaluate a checkpoint on the test icons it was trained with (or, with all_icons, on every
    icon of `data`); `task`, if given, must be the one it was trained for. Returns the accuracy
    and the confusion matrix of the classes."""
    model, meta, task = load_checkpoint(checkpoint, task)
    dataset = load_dataset(data)
    trained_on = meta.get("dataset_fingerprint")
    if not all_icons and dataset.fingerprint != trained_on:
        raise LabError(f"{data}: not the dataset {checkpoint} was trained on (fingerprint "
                       f"{dataset.fingerprint[:12]}…, trained on {str(trained_on)[:12]}…); its "
                       f"test icons are unknown here. Point --data to that folder, or add --all "
                       f"to score every icon of this one")
    idx = np.arange(len(dataset.labels)) if all_icons else \
        dataset.split(meta.get("split", "stratified"))["test"]
    y_true, y_pred = score(model, task, dataset, idx)
    names = task.class_names
    cm = confusion(y_true, y_pred, len(names))
    acc = float((y_true == y_pred).mean())
    views = factor_views(task, y_true, y_pred)
    name = meta.get("run", task.name)
    what = f"all {len(idx)} icons of {data}" if all_icons else f"the {len(idx)} test icons"
    log(f"run {name}: accuracy {acc:.1%} on {what} ({int(cm.trace())} right)")
    if len(names) <= 15:
        log("per-class accuracy and confusion matrix (rows true, columns predicted):")
        for class_name, a, row in zip(names, per_class_accuracy(cm), cm):
            log(f"  {class_name:>22} {a:6.1%}  " + " ".join(f"{c:3d}" for c in row))
    if len(views) > 1:
        log("accuracy of each factor of the predicted class: " + ", ".join(
            f"{f} {c.trace() / c.sum():.1%}" for f, c, _ in views))
    out = Path(checkpoint).parent
    factor_acc = {f: round(float(c.trace() / c.sum()), 4) for f, c, _ in views}
    if all_icons:
        # the same parts of this folder's split: for unseen combinations, its "test" icons are
        # new drawings of the combinations the model never trained on
        parts = {part: {"n_icons": len(i), "accuracy": float((y_true[i] == y_pred[i]).mean())}
                 for part, i in dataset.split(meta.get("split", "stratified")).items()}
        log("by part of its " + meta.get("split", "stratified") + " split: " + ", ".join(
            f"{part} {p['accuracy']:.1%} of {p['n_icons']}" for part, p in parts.items()))
        record = {"folder": str(data), "fingerprint": dataset.fingerprint, "n_icons": len(idx),
                  "accuracy": acc, "factor_accuracy": factor_acc, "parts": parts}
        with Outputs(out) as outputs:
            outputs.manifest(out / "manifest.json", record, "runs", name, "eval_all")
        log(f"recorded in {out / 'manifest.json'} (runs.{name}.eval_all)")
        return acc, cm
    record = {
        "test_accuracy": acc,
        "per_class_accuracy": {n: round(float(a), 4)
                               for n, a in zip(names, per_class_accuracy(cm))}
        if len(names) <= 15 else None,
        "factor_accuracy": factor_acc,
    }
    test_labels = [dataset.labels[i] for i in idx]
    plots = {"confusion_matrix.png": confusion_figure(views, f"TinyViT, {name}: test accuracy "
                                                             f"{acc:.1%}"),
             "cls_attention.png": attention_figure(model, dataset.images[idx], test_labels)}
    with Outputs(out) as outputs:  # the plots and their manifest entry change together
        outputs.manifest(out / "manifest.json", record, "runs", name, "eval")
        for filename, fig in plots.items():
            outputs.file(out / filename, figure_writer(fig))
    log(f"wrote {out / 'confusion_matrix.png'} and cls_attention.png")
    return acc, cm


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Evaluate a trained TinyViT on the test icons it was trained with, or on "
        "every icon of another data folder (--all).",
        epilog="Icons the model has never seen: `uv run python generate_icons.py --out fresh "
        "--seed 7 --manifest fresh/manifest.json`, then `uv run python eval.py --data fresh "
        "--all`.")
    ap.add_argument("--checkpoint", default=str(LAB / "checkpoint.npz"),
                    help="written by train.py (default: checkpoint.npz at the lab's top level)")
    ap.add_argument("--data", default="data", help="folder made by generate_icons.py; without "
                    "--all it must be the one the checkpoint was trained on (default: data)")
    ap.add_argument("--all", action="store_true", help="score every icon of --data, not the "
                    "test split: for a folder drawn with another --seed; draws no plots")
    ap.add_argument("--task", choices=list(TASKS),
                    help="refuse a checkpoint trained for another task (default: its own)")
    args = ap.parse_args(argv)
    try:
        check_writable(Path(args.checkpoint).parent)  # confusion_matrix.png goes beside it
    except LabError as e:
        ap.error(f"--checkpoint {e}")
    evaluate(args.checkpoint, args.data, args.task, args.all)


if __name__ == "__main__":
    run_cli(main)
