"""Train TinyViT on the grammar icons.

    uv run python train.py                       # tense task (5 classes): the lab's acceptance run
    uv run python train.py --task tense_person   # 15 classes, with the recipe chosen for them
    uv run python train.py --task full --head factorised --split combos   # unseen verb forms
    uv run python train.py --patch-size 8 --epochs 5      # another model: runs/tense-patch8/

Each run trains with the recipe chosen for it on validation icons (src/minimodel/recipes.py),
unless `--recipe spec` or an option (--epochs, --lr, ...) says otherwise. The model's settings
(--patch-size, --blocks, --width, ..., --position, --pool) go into its checkpoint, so eval.py
scores any of them without flags.

Trains on the split's training icons, follows the validation icons every epoch, and scores the
test icons once, at the end. Writes, under --out: checkpoint.npz (not committed), loss.png,
accuracy.png, diagnostics.png, and this run's entry in manifest.json.

Where: the default run (the spec's recipe and model on the lab's data) reproduces the lab's
committed results at its top level; any other run goes to runs/<run>/ (never committed), named
after its task and what differs in its model (runs/tense-patch8/; runs/tense-patch8-seed2/ for
seed 2), unless --out says otherwise. A folder holds one run: the same command again replaces
its own run and says so; a folder holding another run is refused, naming the --out that keeps
both (or --replace). A run that would not fit the machine's free memory is refused before
anything is built.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python train.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import math
import platform
import re
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

from minimodel import diagnostics, memory
from minimodel.data import SPLITS, data_folder, load_dataset
from minimodel.files import (
    EVAL_FIGURES,
    LabError,
    Outputs,
    as_typed,
    check_writable,
    columns,
    committed,
    figure_writer,
    from_here,
    manifest_runs,
    printable,
    pyplot,
    read_manifest,
    rows,
    run_cli,
    same_code,
    training_code,
)
from minimodel.grammar.tasks import FACTORS, HEADS, TASKS, Task, run_name
from minimodel.parallel import DataParallel, blas_info, cpu_count
from minimodel.recipes import RECIPES, SPEC, recipe
from vit import SGD, SWITCHES, TinyViT, ViTConfig, cross_entropy, n_parameters, to_inputs

LAB = Path(__file__).resolve().parent
DATA = LAB / "data"

MOMENTUM = 0.9  # the spec's SGD (Block D); epochs, LR, batch and shift: minimodel.recipes
SEED = 0
# the model's settings on the command line: (option, ViTConfig field, short name for runs/)
MODEL_OPTIONS = (("--patch-size", "patch_size", "patch"), ("--blocks", "n_blocks", "blocks"),
                 ("--width", "d_model", "width"), ("--heads", "n_heads", "heads"),
                 ("--mlp", "d_ff", "mlp"), ("--dropout", "dropout", "dropout"),
                 ("--position", "position", "position-"), ("--pool", "pool", "pool-"),
                 ("--attention", "attention", "attention-"))
MAX_TOKENS = 257  # attention's memory grows with the square: patches of 2 and [CLS]


def cosine_lr(step, total, lr):
    """From lr at step 0 down towards 0 at the last step, along half a cosine."""
    # BEGIN BLOCK D: lr at step 0, lr/2 halfway, towards 0 at the end
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
    # END BLOCK D


def shift(x, max_shift, rng):
    """Move each image by up to max_shift pixels each way (edges repeated): augmentation."""
    if max_shift == 0:
        return x
    B, H, W, _ = x.shape
    padded = np.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)),
                    mode="edge")  # (B, H + 2s, W + 2s, C)
    dy, dx = rng.integers(0, 2 * max_shift + 1, (2, B))
    return np.stack([padded[i, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])


# --- the training loop ---------------------------------------------------------------------------


def train(model, x_train, y_train, x_val, y_val, epochs, batch_size, lr, seed, max_shift=0,
          log=print, loss_fn=cross_entropy, predict=lambda logits: logits.argmax(axis=1)):
    """Minibatch SGD with momentum (MOMENTUM), the LR on a cosine schedule per step. x are
    images (N, H, W, 3) in [-1, 1], y class ids (N,); x_val is None when there are no held-out
    icons. loss_fn(logits, y) -> (mean loss, dlogits); predict(logits) -> class ids.

    Each epoch shuffles the training icons (a generator seeded by `seed`) and takes them in
    ceil(N / batch_size) batches, the last one smaller; moves each by up to max_shift pixels
    (`shift`); then scores x_val and logs a line. -> history: a dict an epoch with "epoch",
    "train_loss" and "val_accuracy" (None without x_val); "train_accuracy" (the running
    accuracy of the epoch's batches) and "step_losses" are drawn too where present."""
    # BEGIN BLOCK D: the loop: shuffle, batches, forward, loss, backward, SGD step, a log line
    opt = SGD(model, MOMENTUM)
    rng = np.random.default_rng([seed, 1])  # shuffling and shifts; the model's rng draws dropout
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total, step, t0 = epochs * steps_per_epoch, 0, time.perf_counter()
    history = []
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(x_train))
        losses, correct = [], 0
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            xb = shift(x_train[idx], max_shift, rng)
            model.zero_grad()
            logits = model.forward(xb, train=True)
            loss, dlogits = loss_fn(logits, y_train[idx])
            model.backward(dlogits)
            opt.step(cosine_lr(step, total, lr))
            step += 1
            losses.append(loss)
            correct += int((predict(logits) == y_train[idx]).sum())
        val_acc = None
        if x_val is not None:
            val_acc = float((predict(model.forward(x_val)) == y_val).mean())
        elapsed = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "step_losses": losses, "train_accuracy": correct / len(x_train),
                        "val_accuracy": val_acc, "seconds": elapsed})
        shown = "   —  " if val_acc is None else f"{val_acc:6.1%}"
        log(f"epoch {epoch:2d}/{epochs}  loss {history[-1]['train_loss']:.4f}  "
            f"train acc {correct / len(x_train):6.1%}  val acc {shown}  "
            f"{elapsed:5.1f}s elapsed, ~{elapsed / epoch * (epochs - epoch):4.1f}s left")
    return history
    # END BLOCK D


def check_finite(model, where, lr):
    """Stop a diverged run before its NaNs reach the weights (nothing has been written yet)."""
    if not math.isfinite(float(np.vdot(model.flat_grads, model.flat_grads))):
        bad = [f"the gradient of {name} is not finite" for name, _, g in model.named_parameters()
               if not np.isfinite(g).all()][:3] or ["the gradient is not finite"]
        raise LabError(f"{where}: {'; '.join(bad)}. Training diverged; try a lower --lr "
                       f"(was {lr})")


class Watched:
    """The model as `train` drives it, on both cores and watched: forward and backward run
    each batch as two half-batches at once (DataParallel), a gradient that is not finite stops
    the run in one line, and each epoch's diagnostics are recorded (gradient norms, how far
    each part moved, attention entropy, the validation logits) without a line in the loop.
    Epochs are counted in steps: `steps_per_epoch` training batches each."""

    def __init__(self, model, parallel, steps_per_epoch, lr):
        self.model, self.parallel, self.lr = model, parallel, lr
        self.flat_params, self.flat_grads = model.flat_params, model.flat_grads  # SGD's
        self.steps_per_epoch, self.step = steps_per_epoch, 0
        self.parts = diagnostics.parts(model)
        self.epochs, self.norms, self.val_logits = [], [], None

    def zero_grad(self):
        self.model.zero_grad()

    def forward(self, x, train=False):
        if not train:  # evaluation: the validation icons, in chunks on both cores
            self.val_logits = self.parallel.forward(x)
            return self.val_logits
        if self.step % self.steps_per_epoch == 0:  # a new epoch's first batch
            self.end_epoch()
            self.start = self.flat_params.copy()
        return self.parallel.train_forward(x)

    def backward(self, dlogits):
        self.parallel.backward(dlogits)
        epoch = self.step // self.steps_per_epoch + 1
        check_finite(self.model, f"epoch {epoch}, step {self.step + 1}", self.lr)
        self.norms.append(diagnostics.gradient_norms(self.model, self.parts))
        self.step += 1

    def end_epoch(self):
        """Record the epoch whose steps were taken since the last call (none before the first)."""
        if not self.norms:
            return
        self.epochs.append({
            "grad_norm": {n: float(np.mean([g[n] for g in self.norms])) for n in self.norms[0]},
            "update_ratio": diagnostics.update_ratios(self.model, self.start, self.parts),
            # of the last forward pass: the last validation chunk (or training shard)
            "attention_entropy": diagnostics.block_entropies(self.model),
            "val_logit_mean": None if self.val_logits is None else
            diagnostics.logit_means(self.val_logits)})
        self.norms, self.val_logits = [], None


def train_watched(model, task, x_train, y_train, x_val, y_val, epochs, batch_size, lr, seed,
                  max_shift=0, log=print):
    """`train`, on both cores and watched: y are task.targets. -> its history, each epoch with
    its diagnostics."""
    c_train, c_val = task.classes(y_train), task.classes(y_val)
    groups = task.groups

    def loss_fn(logits, classes):  # the task's loss, from class ids
        if groups is None:
            return cross_entropy(logits, classes)
        return cross_entropy(logits, np.stack(np.unravel_index(classes, groups), axis=1), groups)

    # warnings: NumPy's overflow warnings would only announce what check_finite reports
    with DataParallel(model, seed=seed) as parallel, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        watched = Watched(model, parallel, math.ceil(len(x_train) / batch_size), lr)
        history = train(watched, x_train, c_train, x_val, c_val, epochs, batch_size, lr, seed,
                        max_shift, log, loss_fn, task.decode)
        watched.end_epoch()
    return [{**h, **d} for h, d in zip(history, watched.epochs)]


# --- plots and manifest ------------------------------------------------------------------------


def figures(history, title, n_classes, test_accuracy, n_tokens):
    """{filename: figure} of a run: loss.png, accuracy.png and diagnostics.png."""
    return {**plots(history, title, n_classes, test_accuracy),
            "diagnostics.png": diagnostics.figure(history, title, n_tokens)}


def plots(history, title, n_classes, test_accuracy):
    """The training's two plots, {"loss.png": figure, "accuracy.png": figure}: the training loss
    and the accuracies over the epochs (`history` as `train` returns it; test_accuracy None when
    the test icons were not scored)."""
    # BEGIN BLOCK D: the loss and accuracy curves, epoch by epoch, with chance marked
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    steps = [s for h in history for s in h.get("step_losses", [])]  # (a manifest has none)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if steps:
        ax.plot(np.arange(1, len(steps) + 1) / len(history[0]["step_losses"]), steps,
                color="tab:blue", alpha=0.3, lw=0.8, label="each step")
    ax.plot(np.array(epochs) - 0.5, [h["train_loss"] for h in history], "o-", color="tab:blue",
            label="epoch mean")  # at the middle of the epoch it averages
    ax.axhline(math.log(n_classes), color="gray", ls=":", label=f"chance, ln {n_classes}")
    ax.set(xlabel="epoch", ylabel="cross-entropy (training batches)", title=f"{title}: loss")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.grid(alpha=0.3)
    loss_fig = fig

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-",
            label="train (running, dropout on)")
    if history[0]["val_accuracy"] is not None:  # (none when they are trained on)
        ax.plot(epochs, [100 * h["val_accuracy"] for h in history], "s-", label="validation")
    if test_accuracy is not None:
        ax.plot(epochs[-1], 100 * test_accuracy, "*", ms=12, color="tab:red",
                label="test, scored once at the end")
    ax.axhline(100 / n_classes, color="gray", ls=":", label="chance")
    tested = "not scored" if test_accuracy is None else f"{100 * test_accuracy:.1f}%"
    ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101),
           title=f"{title}: accuracy (test {tested})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return {"loss.png": loss_fig, "accuracy.png": fig}
    # END BLOCK D


def redraw(folder):
    """A run's loss.png, accuracy.png and diagnostics.png drawn again from its manifest alone
    (epoch by epoch: a manifest keeps no step losses), beside it -> the files written."""
    folder = Path(folder)
    runs = read_manifest(folder / "manifest.json").get("runs")
    if not isinstance(runs, dict) or len(runs) != 1:
        raise LabError(f"{printable(folder / 'manifest.json')}: not one run's manifest; point "
                       f"to a folder train.py wrote")
    (name, entry), = runs.items()
    try:
        cfg = ViTConfig(**entry["config"])
        drawn = figures(rows(entry["per_epoch"]), f"TinyViT, {name}", entry["n_classes"],
                        entry["test_accuracy"], cfg.n_tokens)
    except (KeyError, TypeError, ValueError, IndexError):
        raise LabError(f"{printable(folder / 'manifest.json')}: its entry is not as train.py "
                       f"writes it; nothing drawn") from None
    with Outputs(folder) as outputs:
        for filename, fig in drawn.items():
            outputs.file(folder / filename, figure_writer(fig))
    return [folder / f for f in drawn]


def environment():
    """What produced a result: versions, BLAS, CPU, and the code's git commit."""
    import matplotlib
    import PIL

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=LAB, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    changed = git("status", "--porcelain", "--", "*.py")
    return {"python": platform.python_version(), "numpy": np.__version__,
            "pillow": PIL.__version__, "matplotlib": matplotlib.__version__,
            "blas": blas_info(), "cpu": models[0] if models else platform.processor(),
            "cores": cpu_count(),
            "git_commit": git("rev-parse", "HEAD"), "training_code": training_code(LAB),
            "code_changed_since_commit": None if changed is None else bool(changed)}


# --- main ----------------------------------------------------------------------------------------


def run_label(run, cfg):
    """A run's name and what differs in its model from the spec's: tense-patch8, ..."""
    return run + "".join(f"-{short}{getattr(cfg, f)}" for _, f, short in MODEL_OPTIONS
                         if getattr(cfg, f) != getattr(ViTConfig(), f))


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Train TinyViT on the grammar icons.",
        epilog="Examples: `train.py --task tense_person` (its chosen recipe); `train.py "
        "--patch-size 8 --position none` (another model, in runs/tense-patch8-position-none/); "
        "`train.py --task full --recipe spec` (the spec's 20 epochs on 300 classes).")
    ap.add_argument("--task", choices=list(TASKS), default="tense",
                    help="what to predict: tense (5 classes, default), tense_person (15), full "
                    "(300)")
    ap.add_argument("--head", choices=HEADS, default="flat",
                    help="flat: one softmax over the classes (default); factorised: one per "
                    "factor (verb, tense, person), predicting their combination")
    ap.add_argument("--split", choices=SPLITS, default="stratified",
                    help="stratified: 70/10/20 train/validation/test over icons (default); "
                    "combos: 20%% of the combinations held out for testing, 20 more for "
                    "validation (unseen verb forms); both are read from the data folder's "
                    "splits.json")
    ap.add_argument("--recipe", choices=RECIPES, default="chosen",
                    help="chosen: the recipe chosen for this run on validation icons (default; "
                    "for tense it is the spec's); spec: the spec's (20 epochs, LR 0.001, "
                    "batch 32). Options below override either")
    ap.add_argument("--epochs", type=int, help=f"(default: the recipe's; spec {SPEC['epochs']})")
    ap.add_argument("--lr", type=float, help=f"peak learning rate (default: the recipe's; spec "
                    f"{SPEC['lr']})")
    ap.add_argument("--batch-size", type=int, help=f"(default: {SPEC['batch_size']})")
    ap.add_argument("--shift", type=int, metavar="PIXELS",
                    help="augmentation: move each training icon by up to this many pixels "
                    "(default: the recipe's; spec 0, none)")
    model = ap.add_argument_group("the model (default: the spec's ViT-tiny)")
    default = ViTConfig()
    for option, field, _ in MODEL_OPTIONS:
        kind = float if field == "dropout" else str if field in SWITCHES else int
        model.add_argument(option, type=kind, dest=field, default=getattr(default, field),
                           choices=SWITCHES.get(field), help=f"(default: {getattr(default, field)})")
    ap.add_argument("--seed", type=int, default=SEED, help="init, dropout and shuffling seed")
    ap.add_argument("--train-on", choices=("train", "train+val"), default="train",
                    help="train: the split's training icons, validated every epoch (default); "
                    "train+val: the validation icons too, for a final model whose recipe was "
                    "chosen on them (no validation curve then)")
    ap.add_argument("--data", help=f"folder made by generate_icons.py (default: {DATA})")
    ap.add_argument("--no-test", action="store_true", help="train and validate only, without "
                    "scoring the test icons: for choosing a recipe (sweep.py --select)")
    ap.add_argument("--out", help="where the checkpoint, plots and manifest.json go (default: "
                    "the lab's top level for the default run, which reproduces the committed "
                    "results; runs/<run>/ for any other, runs/<run>-seed<k>/ for a seed other "
                    "than 0)")
    ap.add_argument("--replace", action="store_true", help="replace the run --out holds even "
                    "if it is another one (its checkpoint, plots, evaluation and manifest "
                    "entries); never in results/ or at the lab's top level. The same run again "
                    "is replaced without it")
    args = ap.parse_args(argv)
    args.command = [typed(a) for a in (sys.argv[1:] if argv is None else argv)]
    args.data = data_folder(args.data, DATA)  # a LabError: one line, no usage
    task = Task(args.task, args.head)
    try:
        args.config = ViTConfig(n_classes=task.n_outputs, **{f: getattr(args, f)
                                                             for _, f, _ in MODEL_OPTIONS})
    except ValueError as e:  # the config's words, in the options' names
        said = str(e).replace("'", "")
        for option, field, _ in MODEL_OPTIONS:
            said = said.replace(f"{field}=", f"{option} ")
        raise LabError(f"{said}; choose other model options") from None
    if args.config.n_tokens > MAX_TOKENS or n_parameters(args.config) > 5_000_000:
        raise LabError(f"a model of {args.config.n_tokens} tokens and "
                       f"{n_parameters(args.config):,} parameters is past what this lab trains "
                       f"on a laptop (at most {MAX_TOKENS} tokens and 5,000,000 parameters); "
                       f"choose a larger --patch-size or a smaller --width, --mlp or --blocks")
    args.run = run_label(run_name(task, args.split), args.config)
    chosen = recipe(run_name(task, args.split), args.recipe)
    for name in chosen:  # what the options leave unsaid, the recipe says
        if getattr(args, name) is None:
            setattr(args, name, chosen[name])
    # the lab's own run writes the lab's figures; any other, runs/<run>/, with its seed
    labs = (args.run == "tense" and args.data.resolve() == DATA.resolve() and not args.no_test
            and args.seed == SEED and args.train_on == "train"
            and all(getattr(args, k) == v for k, v in SPEC.items()))
    own = args.own = LAB / "runs" / (args.run + (f"-seed{args.seed}" if args.seed != SEED else ""))
    where = None if args.out is None else committed(args.out, LAB)
    if args.out is None:
        args.out = LAB if labs else own
    elif where == "data/" or (where == "the lab's top level" and not labs):
        raise LabError(f"--out {printable(args.out)}: {where} holds the lab's committed "
                       f"{'icons' if where == 'data/' else 'results'}, which only "
                       f"{'generate_icons.py' if where == 'data/' else 'the default run'} "
                       f"writes; leave out --out and this run goes to {from_here(own)}/")
    for name in ("epochs", "batch_size", "lr"):
        if not getattr(args, name) > 0:  # (also refuses nan)
            ap.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not math.isfinite(args.lr) or args.lr > 100:
        ap.error(f"--lr must be at most 100, got {args.lr}")
    for name, top in (("epochs", 10_000), ("batch_size", 4096)):
        if getattr(args, name) > top:
            ap.error(f"--{name.replace('_', '-')} must be at most {top}, got "
                     f"{getattr(args, name)}")
    if not 0 <= args.seed < 2**32:
        ap.error(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    if not 0 <= args.shift <= 8:
        ap.error(f"--shift must be between 0 and 8 pixels, got {args.shift}")
    try:
        check_writable(args.out)  # now, not after the training
    except LabError as e:
        ap.error(f"--out {e}")
    read_manifest(Path(args.out) / "manifest.json")  # a bad one stops us now, not after training
    return args


def check_coverage(dataset, task, train_idx, data):
    """Refuse training icons that never show some value of a factor the task predicts."""
    for factor in TASKS[task.name]:
        seen = set(dataset.ids(f"{factor}_id")[train_idx])
        missing = [v for i, v in enumerate(FACTORS[factor]) if i not in seen]
        if missing:
            raise LabError(f"{printable(data)}: no training icon has {factor} "
                           f"{', '.join(missing[:5])}; the task cannot learn it. Regenerate the "
                           f"dataset with `uv run python generate_icons.py`")


def typed(arg):
    """A command-line argument as a reader of the manifest would type it: an absolute path
    inside the lab relative to its top level, anything else as it was."""
    return as_typed(arg, LAB) if Path(arg).is_absolute() else arg


def rounded(value):
    """Floats to 4 significant digits, inside lists and dicts too: a manifest people can read."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return [rounded(v) for v in value] if isinstance(value, list) else value


def recipe_of(args):
    """A run's recipe, as its manifest entry records it."""
    return {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "schedule": "cosine, per step", "optimizer": "SGD", "momentum": MOMENTUM,
            "shift": args.shift, "seed": args.seed, "train_on": args.train_on, "base": args.recipe}


def settings(entry):
    """What makes a run the run it is, read off its manifest entry: task, head, split, model,
    recipe (not the name of the one it started from) and dataset fingerprint; None if the entry
    does not say. (Entries from before the model's switches have none: the defaults.)"""
    try:
        return {"task": entry["task"], "head": entry["head"], "split": entry["split"],
                **{k: getattr(ViTConfig(), k) for k in SWITCHES}, **entry["config"],
                **{k: v for k, v in entry["recipe"].items() if k != "base"},
                "dataset": entry["dataset"]["fingerprint"]}
    except (KeyError, TypeError, AttributeError):
        return None


def earlier_run(args, fingerprint, log=print):
    """What --out holds, read before anything is built -> (the evaluation entries to keep, the
    files to remove at the commit, whether the manifest's runs are replaced whole).

    A folder holds one run. Holding this run (the same settings: the same command again, or a
    sweep redoing a seed), it is replaced, said, and its evaluation kept where this code trains
    the same weights, else removed with it. Holding another (or what no entry describes), the
    run is refused with the --out that keeps both, or with --replace replaces it whole, except
    where only the lab's own commands write (results/, and the top level but for its run)."""
    out, name = Path(args.out), args.run
    runs = manifest_runs(out / "manifest.json")
    if not runs and not (out / "checkpoint.npz").exists():
        return {}, [], False
    here = f"{from_here(out)}/"
    scored = [f for f in EVAL_FIGURES if (out / f).exists()]
    mine = settings({"task": args.task, "head": args.head, "split": args.split,
                     "config": asdict(args.config), "recipe": recipe_of(args),
                     "dataset": {"fingerprint": fingerprint}})
    entry = runs.get(name) if list(runs) == [name] else None
    theirs = settings(entry)
    if theirs == mine:
        env = entry.get("environment")
        if isinstance(env, dict) and env.get("training_code") in same_code(LAB):
            log(f"replacing the earlier run {name} in {here} (the same settings and training "
                f"code, so the same weights: its evaluation is kept)")
            return {k: entry[k] for k in ("eval", "eval_all") if k in entry}, [], False
        log(f"replacing the earlier run {name} in {here} (the same settings, other training "
            f"code: its evaluation goes with it; score it again with eval.py)")
        return {}, scored, False
    if theirs is not None:
        differ = [k for k in mine if theirs.get(k) != mine[k]]

        def shown(values):
            return ", ".join(f"{k.replace('_', '-')} "
                             f"{str(values.get(k))[:8] + '…' if k == 'dataset' else values.get(k)}"
                             for k in differ[:4])

        what = f"another run of {name} ({shown(theirs)}; this one: {shown(mine)})"
        suffix = "-".join(f"data-{args.data.name}" if k == "dataset" else
                          re.sub(r"[^A-Za-z0-9.]", "", f"{k}{mine[k]}") for k in differ[:3])
    else:
        what = (f"the run{'s' * (len(runs) > 1)} {printable(', '.join(runs))}" if set(runs) - {name}
                else f"a run of {name} whose manifest entry does not say how it was trained"
                if runs else "a checkpoint.npz that no manifest.json entry describes")
        suffix = "2"
    lab = committed(out, LAB)
    if args.replace and lab in (None, "the lab's top level"):  # (the top level: its own run)
        log(f"replacing {what} in {here} (--replace)")
        return {}, scored, True
    base = from_here(args.own if lab else out)
    raise LabError(f"{here}: holds {what}, which this training would replace; keep both with "
                   f"--out {base}-{suffix}" + (" (results/ holds the lab's committed results, "
                                               "which --replace never replaces)"
                                               if lab == "results/" else
                                               ", or replace it with --replace"))


def check_memory(cfg, batch, n_icons, resident, log=print):
    """Refuse a run whose peak memory, estimated from its config, its batch and the dataset's
    size (minimodel.memory), is more than the machine has for it: what is free, and what the
    process holds already (`resident` bytes)."""
    n_params = n_parameters(cfg)
    need = memory.training_peak(cfg, batch, n_icons, n_params)
    free = memory.free_memory()
    if free is None:
        log(f"(this machine does not say how much memory is free: the run's estimated peak, "
            f"{memory.gigabytes(need)}, is not checked against it)")
        return
    room = free + resident
    if need > room:
        fits = memory.largest_batch(
            lambda b: memory.training_peak(cfg, b, n_icons, n_params) <= room, batch)
        lower = (f"lower --batch-size (at most {fits} fits)" if fits else
                 "choose a larger --patch-size or a smaller --width, --mlp or --blocks")
        raise LabError(f"this run would need about {memory.gigabytes(need)} of memory at its "
                       f"peak ({cfg.n_tokens} tokens, {batch} icons a step), more than the "
                       f"{memory.gigabytes(room)} this machine has for it; {lower}")


def run(args, log=print):
    dataset = load_dataset(args.data)
    task = Task(args.task, args.head)
    y = task.targets(dataset)
    idx = dataset.split(args.split)  # {"train", "val", "test"} -> indices, from splits.json
    if args.train_on == "train+val":  # a final model: the recipe was chosen on these icons
        idx["train"], idx["val"] = np.concatenate([idx["train"], idx["val"]]), idx["val"][:0]
    check_coverage(dataset, task, idx["train"], args.data)
    cfg = args.config
    kept, stale, whole = earlier_run(args, dataset.fingerprint, log)
    check_memory(cfg, min(args.batch_size, len(idx["train"])), len(dataset.labels),
                 memory.BASE + dataset.images.nbytes, log)
    x = {part: to_inputs(dataset.images[i]) for part, i in idx.items()}
    model = TinyViT(cfg, seed=args.seed)
    name = args.run
    sizes = {part: len(i) for part, i in idx.items()}
    log(f"run {name}: {len(task.class_names)} classes ({args.head} head, {task.n_outputs} "
        f"outputs), {sizes['train']} train / {sizes['val']} validation / {sizes['test']} test "
        f"icons ({args.split} split), {model.n_params():,} parameters")
    t0 = time.perf_counter()
    x_val = x["val"] if len(idx["val"]) else None
    history = train_watched(model, task, x["train"], y[idx["train"]], x_val, y[idx["val"]],
                            args.epochs, args.batch_size, args.lr, args.seed, args.shift, log)
    seconds = time.perf_counter() - t0
    test_acc = None
    if not args.no_test:
        with DataParallel(model) as parallel:  # the test icons, scored once
            test_pred = task.decode(parallel.forward(x["test"]))
        test_acc = float((test_pred == task.classes(y[idx["test"]])).mean())
    final = history[-1]
    record = {
        "task": args.task, "head": args.head, "split": args.split, "command": args.command,
        "n_classes": len(task.class_names), "config": asdict(cfg),
        "recipe": recipe_of(args),
        "dataset": {"folder": as_typed(args.data, LAB), "fingerprint": dataset.fingerprint,
                    "n_icons": len(dataset.labels)},
        "split_sizes": sizes,
        "parameters": model.n_params(),
        "test_accuracy": test_acc,
        "val_accuracy": final["val_accuracy"],
        "train_accuracy": final.get("train_accuracy"),
        "train_loss": final["train_loss"],
        "training_seconds": round(seconds, 2),
        "per_epoch": columns([rounded({k: v for k, v in h.items() if k != "step_losses"})
                              for h in history]),
        "environment": environment(),
        **kept,  # the evaluation of the same weights, when the same run is trained again
    }
    out = Path(args.out)
    meta = {"task": args.task, "head": args.head, "split": args.split, "run": name,
            "seed": args.seed, "dataset_fingerprint": dataset.fingerprint}
    drawn = figures(history, f"TinyViT, {name}", len(task.class_names), test_acc,
                    cfg.n_tokens)
    with Outputs(out) as outputs:  # checkpoint, plots and manifest change together, or not
        if whole:  # --replace: the folder's other runs go
            outputs.manifest(out / "manifest.json", {name: record}, "runs")
        else:
            outputs.manifest(out / "manifest.json", record, "runs", name)
        for filename in stale:  # the evaluation of a checkpoint this one replaces
            outputs.remove(out / filename)
        outputs.file(out / "checkpoint.npz", lambda f: model.write(f, meta))
        for filename, fig in drawn.items():
            outputs.file(out / filename, figure_writer(fig))
    val = final["val_accuracy"]
    log(f"validation accuracy {'—' if val is None else f'{val:.1%}'}, test accuracy "
        f"{'not scored' if test_acc is None else f'{test_acc:.1%}'} after {args.epochs} "
        f"epoch{'s' * (args.epochs != 1)}, {seconds:.1f}s of training")
    log(f"wrote checkpoint.npz, loss.png, accuracy.png, diagnostics.png and manifest.json to "
        f"{from_here(out)}/" + ("" if out == LAB else
                                       f"; score it with `uv run python {from_here(LAB / 'eval.py')}"
                                       f" --checkpoint {from_here(out / 'checkpoint.npz')}`"))
    return history


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
