"""Evaluate a trained TinyViT: accuracy, per-class accuracy, confusion matrix, and where its
[CLS] token looks.

    uv run python eval.py        # the checkpoint that train.py writes by default, on its test icons
    uv run python eval.py --checkpoint runs/RUN/checkpoint.npz
    uv run python generate_icons.py --out fresh --seed 1
    uv run python eval.py --data fresh --all     # every icon of a folder the model never saw
    uv run python eval.py --heads                # and [CLS]'s attention head by head: cls_heads.png

By default it scores the test icons that train.py held out, read from the data folder's
splits.json, and refuses a data folder other than the one the checkpoint was trained on. It writes
confusion_matrix.png, mistakes.png and cls_attention.png beside the checkpoint (with --heads,
cls_heads.png too) and adds the evaluation to that folder's manifest.json entry for the run. With
--all it scores every icon of --data instead and records the result (as "eval_all"), drawing no
plots: beside the checkpoint, or in runs/lab/ for the lab's own checkpoint, whose folder holds the
committed results. A folder that holds a trained run takes only that run's evaluation, from its
own checkpoint.npz: score a copied checkpoint elsewhere with --out.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python eval.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import math
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np

import generate_icons as gi
import vit
from minimodel.data import SIZE, SPLITS, data_folder, load_dataset
from minimodel.files import (
    LabError,
    Outputs,
    as_typed,
    check_writable,
    committed,
    figure_writer,
    from_here,
    manifest_runs,
    printable,
    pyplot,
    run_cli,
)
from minimodel.grammar.tasks import FACTORS, HEADS, TASKS, Task
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS
from minimodel.parallel import DataParallel
from vit import TinyViT, ViTConfig, to_inputs

LAB = Path(__file__).resolve().parent
DATA = LAB / "data"


def confusion(y_true, y_pred, n):
    """(n, n) counts: row = true class, column = predicted class."""
    # BEGIN BLOCK E: count (true, predicted) pairs: row true, column predicted
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm
    # END BLOCK E


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


def draw_confusion(ax, cm, names, title):
    """Draw the confusion matrix cm (rows true, columns predicted) on the matplotlib Axes ax:
    a cell a pair of classes, coloured by the share of its row, its count written in it, the
    class names along both axes."""
    # BEGIN BLOCK E: imshow of the row shares, the counts as text, names as tick labels
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
    ax.set(xlabel="predicted", ylabel="true", title=title)
    # END BLOCK E


def confusion_figure(views, title):
    """confusion_matrix.png: one panel per view, (name, cm, class names), side by side."""
    plt = pyplot()
    widths = [max(4.5, 0.42 * len(names) + 2.2) for _, _, names in views]
    fig, axes = plt.subplots(1, len(views), figsize=(sum(widths), max(widths) * 0.9),
                             width_ratios=widths, squeeze=False)
    for ax, (name, cm, names) in zip(axes[0], views):
        draw_confusion(ax, cm, names, f"{name}: {cm.trace() / cm.sum():.1%} of {cm.sum()}")
    fig.suptitle(title)
    return fig


def cls_attention(model, image):
    """Where [CLS] looks in one image: (n, n) maps, one entry a patch, of the last block's
    attention (heads averaged) and of the attention rollout through all blocks (Abnar &
    Zuidema, 2020). Without [CLS] (pool="mean"), the mean of the patch tokens' rows: where
    the tokens that the head averages look."""
    model.forward(image[None])  # evaluation mode; every block keeps its last `att`
    cfg = model.cfg
    n, first = cfg.image_size // cfg.patch_size, int(cfg.pool == "cls")  # patches: first..T-1
    rollout = np.eye(cfg.n_tokens)
    for block in model.blocks:  # with [CLS], the last block's att has its row only: (1, H, 1, T)
        a = block.att[0].mean(axis=0)  # (T', T), heads averaged
        a = a + np.eye(*a.shape)  # the residual path carries each token on
        rollout = (a / a.sum(axis=1, keepdims=True)) @ rollout
    last = model.blocks[-1].att[0].mean(axis=0).mean(axis=0)  # (T,): the reader's row
    return last[first:].reshape(n, n), rollout.mean(axis=0)[first:].reshape(n, n)


def reader(cfg):
    """Who reads the patches for the head, in words."""
    return "[CLS]" if cfg.pool == "cls" else "the patch tokens (mean pooling, no [CLS])"


def icon_title(lab):
    """'buy · past_simple · 2sg, icon 1': the icon's verb form, from its labels, and its index
    among that form's icons where its filename is the generator's (another name: no index)."""
    form = VERBS[lab["verb_id"]], TENSES[lab["tense_id"]], PERSONS[lab["person_id"]]
    idx = re.fullmatch(r"verb_{}_tense_{}_person_{}_(\d+)\.png".format(*form), lab["filename"])
    return " · ".join(form) + (f", icon {idx[1]}" if idx else "")


def one_per_tense(labels):
    """One icon per tense, each row another verb and person where the icons have them: every
    person and every tense once -> [index into labels]."""
    def pick(t):
        ranked = sorted((lab["verb_id"] != 4 * t, lab["person_id"] != t % 3, i)
                        for i, lab in enumerate(labels) if lab["tense_id"] == t)
        return ranked[0][2]

    return [pick(t) for t in range(len(TENSES))]


def times_scale(reach):
    """A colour scale of attention ÷ uniform: log, symmetric, from e^-reach to e^reach."""
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=math.exp(-reach), vmax=math.exp(reach))


HEADS_REACH = math.log(8)  # single heads' attention, and their measure: drawn from 1/8× to 8×


def times_bar(fig, shown, axes, label, **options):
    """The colour bar of an image drawn on a times_scale, in plain numbers: 0.5×, 1×, 2×."""
    bar = fig.colorbar(shown, ax=axes, label=label, **options)
    reach = math.log(shown.norm.vmax)
    ticks = [t for t in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16)
             if abs(math.log(t)) <= reach + 1e-9]
    bar.set_ticks(ticks, labels=[f"{t:g}×" for t in ticks])
    bar.minorticks_off()
    return bar


def attention_figure(model, images, labels):
    """One test icon per tense: the icon, then where [CLS] looks in the last block and through
    all blocks (rollout), each patch's attention drawn against uniform attention (1/T)."""
    plt = pyplot()
    picks = one_per_tense(labels)
    cfg = model.cfg
    uniform, n = 1 / cfg.n_tokens, cfg.image_size // cfg.patch_size
    maps = [cls_attention(model, to_inputs(images[i])) for i in picks]
    # one colour scale for every map: × uniform, log, symmetric, and never narrower than ¼–4×,
    # so that near-uniform attention looks near-white, not like sharp focus
    reach = max(math.log(4), max(float(np.abs(np.log(m / uniform)).max())
                                 for pair in maps for m in pair))
    norm = times_scale(reach)
    fig, axes = plt.subplots(len(picks), 3, figsize=(8.4, 2.6 * len(picks)),
                             layout="constrained")
    for row, i, (last, rollout) in zip(axes, picks, maps):
        row[0].imshow(images[i], interpolation="nearest")
        row[0].set_title(icon_title(labels[i]), fontsize=8)
        for ax, att, name in ((row[1], last, "last block"), (row[2], rollout, "rollout")):
            shown = ax.imshow(att / uniform, cmap="RdBu_r", norm=norm, interpolation="nearest")
            ax.set_title(f"{name}: {att.min():.4f}–{att.max():.4f}\n"
                         f"({att.min() / uniform:.2f}–{att.max() / uniform:.2f}× uniform)",
                         fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    who = "[CLS]'s" if cfg.pool == "cls" else "the tokens' mean"
    times_bar(fig, shown, axes, f"{who} attention to a patch, ÷ uniform (1/{cfg.n_tokens}):"
              f" white = uniform, red = more, blue = less", shrink=0.5)
    fig.suptitle(f"Where {reader(cfg)} looks, patch by patch ({n}×{n} patches of "
                 f"{cfg.patch_size}×{cfg.patch_size} pixels), heads averaged\n"
                 "last block: its attention weights; rollout: attention multiplied through the "
                 "blocks, the residual\npath added (Abnar & Zuidema, 2020): which patches "
                 f"reach {'[CLS]' if cfg.pool == 'cls' else 'the head'} at all.\nAttention "
                 "shows where information can flow, not which pixels decide the answer.",
                 fontsize=9)
    return fig


REGIONS = ("background", "outline", "inside")


def regions(cfg, seed=gi.FRESH_SEED, n=1000):
    """For each fresh icon (`gi.render_dataset(n, seed)`), each patch's region, from the
    generator's own masks: 0 background, 1 the shape's outline (the person), 2 inside the shape
    (the colour and the verb's texture) -> (n, N) ints."""
    rows = []
    for v, t, p, idx in gi.icon_list(n):
        shape, _, _ = gi.render_masks(VERBS[v], TENSES[t], PERSONS[p], idx, seed=seed)
        # vit's patchify, as the model calls it (lessons.py --with-bug swaps it): (N,)
        cover = vit.patchify(shape[None, :, :, None], cfg.patch_size).mean(axis=2)[0]
        rows.append(np.where(cover < 0.02, 0, np.where(cover > 0.98, 2, 1)))
    return np.array(rows)


def head_focus(model, images, region):
    """The attention lesson's measure: per block and head, the share of [CLS]'s attention over
    the patches that goes to each region's patches, ÷ the region's share of the patches,
    averaged over the icons that have the region (1 = uniform)
    -> ({region: (blocks, heads) nested lists}, {region: icons that have it})."""
    cfg = model.cfg
    shares = np.stack([(region == r).mean(axis=1) for r in range(3)], axis=1)  # (n, 3)
    mass = np.zeros((cfg.n_blocks, cfg.n_heads, 3))
    counted = np.zeros(3)
    for start in range(0, len(images), 100):
        model.forward(to_inputs(images[start:start + 100]))
        r = region[start:start + 100]
        s = shares[start:start + 100]
        for b, block in enumerate(model.blocks):
            att = block.att[:, :, 0, 1:]  # (n, H, N): [CLS]'s row, over the patches
            att = att / att.sum(axis=-1, keepdims=True)
            for k in range(3):
                has = s[:, k] > 0
                part = (att * (r == k)[:, None, :]).sum(axis=-1)  # (n, H)
                mass[b, :, k] += (part[has] / s[has, k, None]).sum(axis=0)
        counted += (shares[start:start + 100] > 0).sum(axis=0)
    enrichment = mass / np.maximum(counted, 1)  # (blocks, heads, regions), 1 = uniform
    return ({REGIONS[k]: np.round(enrichment[..., k], 3).tolist() for k in range(3)},
            dict(zip(REGIONS, counted.astype(int).tolist())))


def heads_figure(runs, images, labels):
    """For one icon per tense (every person too), each model's [CLS] attention in its most
    outline-bound and its most inside-bound head (by head_focus's ratios), drawn over the icon
    in grey, beside the icon itself. runs: [(name, model, ratios)]."""
    plt = pyplot()
    picks = one_per_tense(labels)
    columns = []  # (title, (icons, n, n) attention ÷ uniform over the patches)
    for name, model, ratios in runs:
        n = model.cfg.image_size // model.cfg.patch_size
        model.forward(to_inputs(images[picks]))
        for region in ("outline", "inside"):
            a = np.array(ratios[region])  # (blocks, heads)
            b, h = np.unravel_index(a.argmax(), a.shape)
            att = model.blocks[b].att[:, h, 0, 1:]  # (icons, N): [CLS]'s row, over the patches
            att = att / att.mean(axis=-1, keepdims=True)  # 1 = uniform over the patches
            title = (f"{name}: most {region}-bound\nblock {b}, head {h}: outline\n"
                     f"{ratios['outline'][b][h]:.2f}×, inside {ratios['inside'][b][h]:.2f}×")
            columns.append((title, att.reshape(len(picks), n, n)))
    norm, size = times_scale(HEADS_REACH), images.shape[1]
    fig, axes = plt.subplots(len(picks), 1 + len(columns), squeeze=False, layout="constrained",
                             figsize=(2.1 * len(columns) + 3.4, 2 * len(picks) + 1.6))
    for r, (row, i) in enumerate(zip(axes, picks)):
        row[0].imshow(images[i], interpolation="nearest")
        row[0].set_title(icon_title(labels[i]).replace(", icon", "\nicon"), fontsize=8)
        for ax, (title, att) in zip(row[1:], columns):
            ax.imshow(images[i].mean(axis=-1), cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            shown = ax.imshow(att[r], cmap="RdBu_r", norm=norm, alpha=0.7,
                              extent=(-0.5, size - 0.5, size - 0.5, -0.5),
                              interpolation="nearest")
            if r == 0:
                ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    times_bar(fig, shown, axes, "[CLS]'s attention to a patch ÷ uniform (1 ÷ the patches)\n"
              "white = uniform, red = more, blue = less", shrink=0.5, extend="both")
    fig.suptitle("Where single heads of [CLS] look, over fresh icons: each model's most "
                 "outline-bound and most\ninside-bound head, by their attention to the outline's "
                 "and the inside's patches ÷ their share\n(1000 fresh icons; 1 = uniform)",
                 fontsize=9)
    return fig


def heads_view(runs, seed=gi.FRESH_SEED):
    """The heads of models [(name, model)] measured on the 1000 fresh icons as the attention
    lesson measures them, and drawn over a few of them -> (figure, [each model's ratios])."""
    images, labels = gi.render_dataset(1000, seed)
    measured = [head_focus(model, images, regions(model.cfg, seed))[0] for _, model in runs]
    fig = heads_figure([(*run, ratios) for run, ratios in zip(runs, measured)], images, labels)
    return fig, measured


def mistakes_figure(images, labels, y_true, y_pred, task, max_shown=40):
    """The icons the model got wrong (up to max_shown), enlarged, each with its true and
    predicted class; for more than one factor, the wrong factors are named."""
    plt = pyplot()
    wrong = np.flatnonzero(y_true != y_pred)
    shown = wrong[:max_shown]
    cols = min(5, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(2.6 * cols, 5.5), 2.9 * rows + 0.8),
                             squeeze=False, layout="constrained")  # room for the titles
    factors = TASKS[task.name]
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        true, pred = (np.unravel_index(c, task.sizes) for c in (y_true[i], y_pred[i]))
        words = [f"{f}: {FACTORS[f][t]} → {FACTORS[f][p]}" for f, t, p in zip(factors, true, pred)
                 if t != p]
        ax.imshow(images[i], interpolation="nearest")
        ax.set_title(icon_title(labels[i]) .replace(", icon", "\nicon") + "\n" +
                     "\n".join(words), fontsize=7.5)
    what = (f"{len(wrong)} of {len(y_true)} test icons wrong" if len(wrong) else
            f"no mistakes on the {len(y_true)} test icons")
    more = f" (the first {max_shown} shown)" if len(wrong) > max_shown else ""
    fig.suptitle(f"What the model gets wrong: {what}{more}\nabove each icon: its verb form, "
                 f"then true → predicted for each wrong factor", fontsize=9)
    return fig


def json_type(value):
    """How JSON would name a value's type, for a message."""
    return {list: "a list", dict: "an object", bool: "true or false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def load_checkpoint(checkpoint, task=None):
    """The model and its Task, checked against each other -> (model, meta, task)."""
    model, meta = TinyViT.load(checkpoint)
    for key in ("task", "head", "split", "run", "dataset_fingerprint"):  # written by train.py
        if key in meta and not isinstance(meta[key], str):
            raise LabError(f"{printable(checkpoint)}: its metadata field {key!r} is "
                           f"{printable(json_type(meta[key]))}, not a string; retrain it with "
                           f"train.py")
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


def run_of(checkpoint, meta, task):
    """The run a checkpoint's evaluation is recorded under: the name its metadata gives,
    which must be a plain name (a manifest key and a folder under runs/, never a path)."""
    name = meta.get("run", task.name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name) or ".." in name:
        raise LabError(f"{printable(checkpoint)}: its metadata names the run "
                       f"{printable(repr(name))}, not a plain name (letters, digits, _ . -); "
                       f"retrain it with train.py")
    return name


def score(model, images, y_true, n_classes, predict=lambda logits: logits.argmax(axis=1)):
    """The model's answers on `images`, uint8 icons (N, 32, 32, 3), against their true class
    ids y_true (N,); predict(logits) -> class ids. -> (predicted class ids (N,), accuracy,
    confusion matrix (n_classes, n_classes))."""
    # BEGIN BLOCK E: the model's logits on the icons (scaled as in training), accuracy, confusion
    y_pred = predict(model.forward(to_inputs(images)))
    return y_pred, float((y_true == y_pred).mean()), confusion(y_true, y_pred, n_classes)
    # END BLOCK E


def evaluate(checkpoint, data, task=None, all_icons=False, out=None, log=print, heads=False):
    """Evaluate a checkpoint on the test icons it was trained with (or, with all_icons, on every
    icon of `data`); `task`, if given, must be the one it was trained for. Writes into `out`
    (default: the checkpoint's folder); with `heads`, cls_heads.png too. Returns the accuracy
    and the confusion matrix."""
    model, meta, task = load_checkpoint(checkpoint, task)
    dataset = load_dataset(data)
    trained_on = meta.get("dataset_fingerprint")
    if not all_icons and dataset.fingerprint != trained_on:
        raise LabError(f"{data}: not the dataset {checkpoint} was trained on (fingerprint "
                       f"{dataset.fingerprint[:12]}…, trained on {str(trained_on)[:12]}…); its "
                       f"test icons are unknown here. Point --data to that folder, or add --all "
                       f"to score every icon of this one")
    split = meta.get("split", "stratified")
    idx = np.arange(len(dataset.labels)) if all_icons else dataset.split(split)["test"]
    y_true, names = task.classes(task.targets(dataset))[idx], task.class_names
    with DataParallel(model) as parallel:  # the icons in chunks, on both cores
        y_pred, acc, cm = score(parallel, dataset.images[idx], y_true, len(names), task.decode)
    views = factor_views(task, y_true, y_pred)
    name = run_of(checkpoint, meta, task)
    what = f"all {len(idx)} icons of {data}" if all_icons else f"the {len(idx)} test icons"
    log(f"run {name}: accuracy {acc:.1%} on {what} ({int(cm.trace())} right)")
    if len(names) <= 15:
        width = max(map(len, names)) + 3
        log("per-class accuracy and confusion matrix (rows: true class; columns: predicted):")
        log(f"  {'predicted →':>{width}} {'':>6}  " +
            " ".join(f"{j:>3}" for j in range(len(names))))
        for j, (class_name, a, row) in enumerate(zip(names, per_class_accuracy(cm), cm)):
            log(f"  {f'{j} {class_name}':>{width}} {a:6.1%}  " +
                " ".join(f"{c:3d}" for c in row))
    if len(views) > 1:
        log("accuracy of each factor of the predicted class: " + ", ".join(
            f"{f} {c.trace() / c.sum():.1%}" for f, c, _ in views))
    out = Path(checkpoint).parent if out is None else Path(out)
    factor_acc = {f: round(float(c.trace() / c.sum()), 4) for f, c, _ in views}
    if all_icons:
        # the same parts of this folder's split: for unseen combinations, its "test" icons are
        # new drawings of the combinations the model never trained on
        parts = {part: {"n_icons": len(i), "accuracy": float((y_true[i] == y_pred[i]).mean())}
                 for part, i in dataset.split(split).items()}
        log(f"by part of this folder's {split} split (other icons than the model's, none "
            f"trained on): " + ", ".join(f"{p['accuracy']:.1%} of the {p['n_icons']} icons in "
                                         f"its {part} part" for part, p in parts.items()))
        record = {"folder": as_typed(data, LAB), "fingerprint": dataset.fingerprint, "n_icons": len(idx),
                  "accuracy": acc, "factor_accuracy": factor_acc, "parts": parts}
        with Outputs(out) as outputs:
            outputs.manifest(out / "manifest.json", record, "runs", name, "eval_all")
        log(f"recorded in {from_here(out / 'manifest.json')} (runs.{name}.eval_all)")
        return acc, cm
    record = {
        "test_accuracy": acc,
        "per_class_accuracy": {n: round(float(a), 4)
                               for n, a in zip(names, per_class_accuracy(cm))}
        if len(names) <= 15 else None,
        "factor_accuracy": factor_acc,
        "mistakes": [dataset.labels[i]["filename"] for i in idx[y_true != y_pred]],
    }
    test_images = dataset.images[idx]
    test_labels = [dataset.labels[i] for i in idx]
    plots = {"confusion_matrix.png": confusion_figure(views, f"TinyViT, {name}: test accuracy "
                                                             f"{acc:.1%}"),
             "mistakes.png": mistakes_figure(test_images, test_labels, y_true, y_pred, task),
             "cls_attention.png": attention_figure(model, test_images, test_labels)}
    if heads:
        plots["cls_heads.png"] = heads_view([(name, model)])[0]
    with Outputs(out) as outputs:  # the plots and their manifest entry change together
        outputs.manifest(out / "manifest.json", record, "runs", name, "eval")
        for filename, fig in plots.items():
            outputs.file(out / filename, figure_writer(fig))
    log(f"wrote {', '.join(plots)} and the run's entry in manifest.json to {from_here(out)}/")
    return acc, cm


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Evaluate a trained TinyViT on the test icons it was trained with, or on "
        "every icon of another data folder (--all).",
        epilog="Icons the model has never seen: `uv run python generate_icons.py --out fresh "
        "--seed 1`, then `uv run python eval.py --data fresh --all`.")
    ap.add_argument("--checkpoint", default=str(LAB / "checkpoint.npz"),
                    help="written by train.py (default: checkpoint.npz at the lab's top level)")
    ap.add_argument("--data", help="folder made by generate_icons.py; without --all it must be "
                    f"the one the checkpoint was trained on (default: {DATA})")
    ap.add_argument("--all", action="store_true", help="score every icon of --data, not the "
                    "test split: for a folder drawn with another --seed; draws no plots")
    ap.add_argument("--heads", action="store_true", help="also draw cls_heads.png: [CLS]'s "
                    f"attention over fresh icons (generator seed {gi.FRESH_SEED}, drawn in memory) "
                    "in the model's most outline-bound and most inside-bound heads, as the "
                    "attention lesson measures them (docs/lessons.md#attention)")
    ap.add_argument("--task", choices=list(TASKS),
                    help="refuse a checkpoint trained for another task (default: its own)")
    ap.add_argument("--out", help="where the plots and manifest entry go (default: beside the "
                    "checkpoint; for --all on the lab's own checkpoint, runs/lab/, so that "
                    "the committed manifest.json is left as it is)")
    args = ap.parse_args(argv)
    if args.heads and args.all:
        ap.error("--heads draws a figure and --all draws none: drop one of them")
    data = data_folder(args.data, DATA)  # a LabError: one line, no usage
    if args.heads and load_checkpoint(args.checkpoint, args.task)[0].cfg.pool != "cls":
        raise LabError(f"{printable(args.checkpoint)}: --heads draws [CLS]'s attention, and this "
                       f"model has no [CLS] (trained with --pool mean); drop --heads")
    out = args.out
    if out is None and args.all and Path(args.checkpoint).absolute().parent.resolve() == LAB:
        # the lab's own model: its folder holds the committed results, and runs/<run>/ a
        # user's own run of that task, so its scores on other icons go to runs/lab/
        load_checkpoint(args.checkpoint, args.task)  # (a bad checkpoint stops us here)
        out = LAB / "runs" / "lab"
    try:
        check_writable(Path(args.checkpoint).parent if out is None else out)
    except LabError as e:
        ap.error(f"--{'checkpoint' if out is None else 'out'} {e}")
    check_folder(Path(args.checkpoint), Path(args.checkpoint).parent if out is None else out,
                 data, args.task, args.all)
    evaluate(args.checkpoint, data, args.task, args.all, out, heads=args.heads)


def check_folder(checkpoint, folder, data, task=None, all_icons=False, log=print):
    """Refuse to write a checkpoint's evaluation where it would mix with another run: a folder
    that holds a trained run takes only the evaluation of that run, from its own
    checkpoint.npz; the lab's top level only its own (never --all's scores); data/ none. In
    results/ --all does not replace scores on other icons (elsewhere it says it does)."""
    model, meta, task = load_checkpoint(checkpoint, task)  # (a bad checkpoint stops us here)
    name, folder = run_of(checkpoint, meta, task), Path(folder)
    runs, lab = manifest_runs(folder / "manifest.json"), committed(folder, LAB)
    elsewhere = (f"send its outputs elsewhere with --out "
                 f"{from_here(LAB / 'runs' / (checkpoint.stem if checkpoint.stem != 'checkpoint' else name))}")
    if lab == "data/" or (lab and all_icons and lab != "results/"):
        raise LabError(f"{from_here(folder)}/: {lab} holds the lab's committed "
                       f"{'icons' if lab == 'data/' else 'results'}; {elsewhere}")
    trained = {k: e for k, e in runs.items() if settings_in(e)}
    if trained or lab == "the lab's top level":
        entry = trained.get(name)
        own = checkpoint.name == "checkpoint.npz" and \
            checkpoint.absolute().parent.resolve() == folder.resolve()
        if not own or set(runs) - {name} or entry is None or settings_in(entry) != (
                meta.get("seed"), meta.get("dataset_fingerprint"), asdict(model.cfg)):
            held = ", ".join(printable(k) for k in runs) or "nothing yet"
            raise LabError(f"{from_here(checkpoint)}: not the checkpoint of the run in "
                           f"{from_here(folder)}/ ({held}); scoring it there would mix its "
                           f"figures and manifest entry with that run's; {elsewhere}")
    before = runs.get(name, {}).get("eval_all") if all_icons and isinstance(
        runs.get(name), dict) else None
    if isinstance(before, dict) and before.get("fingerprint") != load_dataset(data).fingerprint:
        if lab:
            raise LabError(f"{from_here(folder)}/: holds this run's scores on other icons "
                           f"({printable(before.get('folder'))}), part of the lab's committed "
                           f"results; {elsewhere}")
        log(f"replacing this run's scores on {printable(before.get('folder'))} (other icons) "
            f"in {from_here(folder / 'manifest.json')}")


def settings_in(entry):
    """(seed, dataset fingerprint, config) of a trained run's manifest entry; None if it is not
    one (an entry of scores only). What a checkpoint's metadata and config can be checked by."""
    try:
        cfg = {**asdict(ViTConfig()), **entry["config"]}
        return entry["recipe"]["seed"], entry["dataset"]["fingerprint"], cfg
    except (KeyError, TypeError):
        return None


if __name__ == "__main__":
    run_cli(main)
