"""Train TinyViT on the grammar icons.

    uv run python train.py                       # tense task (5 classes): the lab's acceptance run
    uv run python train.py --task tense_person   # 15 classes
    uv run python train.py --task full           # 300 classes

Writes, under --out: checkpoint.npz (not committed), loss.png, accuracy.png, and this run's
entry in manifest.json.
"""

import argparse
import math
import platform
import subprocess
import time
import warnings
from dataclasses import asdict
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
from vit import SGD, DataParallel, TinyViT, ViTConfig, blas_info, to_inputs

LAB = Path(__file__).resolve().parent

# --- defaults: the spec's recipe (Block D) ------------------------------------------------------
EPOCHS = 20
BATCH_SIZE = 32
LR = 1e-3
MOMENTUM = 0.9
SEED = 0

# --- tasks: which label a run predicts ------------------------------------------------------------
TASKS = {  # name -> (label of one icon, class names)
    "tense": (lambda lab: lab["tense_id"], list(TENSES)),
    "tense_person": (lambda lab: lab["tense_id"] * len(PERSONS) + lab["person_id"],
                     [f"{t} {p}" for t in TENSES for p in PERSONS]),
    "full": (lambda lab: lab["class_id"],
             [f"{v} {t} {p}" for v in VERBS for t in TENSES for p in PERSONS]),
}


def task_labels(dataset, task):
    """-> y (N,) int labels of the task, and the class names."""
    label, names = TASKS[task]
    return np.array([label(lab) for lab in dataset.labels], dtype=np.int64), names


def predict(model, x, batch_size=64):
    """Class predictions in evaluation mode (no dropout), batch by batch. `model` is a TinyViT
    or a DataParallel of one."""
    return np.concatenate([model.forward(x[i:i + batch_size]).argmax(axis=1)
                           for i in range(0, len(x), batch_size)])


def cosine_lr(step, total, lr):
    """From lr at step 0 down towards 0 at the last step, along half a cosine."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


# --- the training loop --------------------------------------------------------------------------


def check_finite(model, loss, where, lr):
    """Stop a diverged run before its NaNs reach the weights (nothing has been written yet)."""
    bad = [] if math.isfinite(loss) else [f"the loss is {loss}"]
    if not bad and not all(math.isfinite(float(np.vdot(g, g))) for _, _, g in
                            model.named_parameters()):
        bad = [f"the gradient of {name} is not finite" for name, _, g in model.named_parameters()
               if not np.isfinite(g).all()][:3]
    if bad:
        raise LabError(f"{where}: {'; '.join(bad)}. Training diverged; try a lower --lr "
                       f"(was {lr})")


def train(model, x_train, y_train, x_test, y_test, epochs, batch_size, lr, seed, log=print):
    """SGD with momentum and a per-step cosine schedule. Returns the history, one dict an epoch."""
    opt = SGD(model, MOMENTUM)
    parallel = DataParallel(model, seed)  # each batch as two half-batches on two cores
    rng = np.random.default_rng([seed, 1])  # shuffling; the model's own rng draws dropout
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total, step, t0 = epochs * steps_per_epoch, 0, time.perf_counter()
    history = []
    with warnings.catch_warnings():
        # NumPy's overflow warnings would only announce what check_finite reports in one line
        warnings.simplefilter("ignore", RuntimeWarning)
        for epoch in range(1, epochs + 1):
            perm = rng.permutation(len(x_train))
            losses, correct = [], 0
            for i in range(0, len(perm), batch_size):
                idx = perm[i:i + batch_size]
                loss, logits = parallel.train_step(x_train[idx], y_train[idx])  # fills grads
                check_finite(model, loss, f"epoch {epoch}, step {step + 1}", lr)
                opt.step(cosine_lr(step, total, lr))
                losses.append(loss)
                correct += int((logits.argmax(axis=1) == y_train[idx]).sum())
                step += 1
            test_acc = float((predict(parallel, x_test) == y_test).mean())
            elapsed = time.perf_counter() - t0
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                            "step_losses": losses, "train_accuracy": correct / len(x_train),
                            "test_accuracy": test_acc, "seconds": elapsed})
            log(f"epoch {epoch:2d}/{epochs}  loss {history[-1]['train_loss']:.4f}  "
                f"train acc {correct / len(x_train):6.1%}  test acc {test_acc:6.1%}  "
                f"{elapsed:5.1f}s elapsed, ~{elapsed / epoch * (epochs - epoch):4.1f}s left")
    return history


# --- plots and manifest ------------------------------------------------------------------------


def save_plots(history, out, title, n_classes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    steps = [s for h in history for s in h["step_losses"]]
    fig, ax = plt.subplots(figsize=(7, 4.2))
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
    _save(fig, Path(out) / "loss.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-",
            label="train (running, dropout on)")
    ax.plot(epochs, [100 * h["test_accuracy"] for h in history], "s-", label="test")
    ax.axhline(100 / n_classes, color="gray", ls=":", label="chance")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101),
           title=f"{title}: accuracy (final test {100 * history[-1]['test_accuracy']:.1f}%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, Path(out) / "accuracy.png")


def _save(fig, path):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


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

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    changed = git("status", "--porcelain", "--", "*.py")
    return {"python": platform.python_version(), "numpy": np.__version__,
            "pillow": PIL.__version__, "matplotlib": matplotlib.__version__,
            "blas": blas_info(), "cpu": cpu, "cores": len(__import__("os").sched_getaffinity(0)),
            "git_commit": git("rev-parse", "HEAD"),
            "code_changed_since_commit": None if changed is None else bool(changed)}


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Train TinyViT on the grammar icons.")
    ap.add_argument("--task", choices=list(TASKS), default="tense",
                    help="what to predict (default: tense, 5 classes)")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"(default: {EPOCHS})")
    ap.add_argument("--lr", type=float, default=LR, help=f"peak learning rate (default: {LR})")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"(default: {BATCH_SIZE})")
    ap.add_argument("--seed", type=int, default=SEED, help="init, dropout and shuffling seed")
    ap.add_argument("--data", default="data", help="folder made by generate_icons.py")
    ap.add_argument("--out", default=str(LAB), help="where the checkpoint, plots and "
                    "manifest.json go (default: the lab's top level)")
    args = ap.parse_args(argv)
    for name in ("epochs", "batch_size", "lr"):
        if not getattr(args, name) > 0:  # (also refuses nan)
            ap.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not math.isfinite(args.lr):
        ap.error(f"--lr must be finite, got {args.lr}")
    try:
        check_writable(args.out)  # now, not after the training
    except LabError as e:
        ap.error(f"--out {e}")
    return args


def run(args, log=print):
    dataset = load_dataset(args.data)
    y, names = task_labels(dataset, args.task)
    train_idx, test_idx = split(dataset.labels)
    x = to_inputs(dataset.images)
    cfg = ViTConfig(n_classes=len(names))
    model = TinyViT(cfg, seed=args.seed)
    log(f"task {args.task}: {len(names)} classes, {len(train_idx)} train / {len(test_idx)} test "
        f"icons, {model.n_params():,} parameters")
    t0 = time.perf_counter()
    history = train(model, x[train_idx], y[train_idx], x[test_idx], y[test_idx], args.epochs,
                    args.batch_size, args.lr, args.seed, log)
    seconds = time.perf_counter() - t0
    final = history[-1]
    record = {
        "task": args.task, "n_classes": len(names), "config": asdict(cfg),
        "recipe": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                   "schedule": "cosine, per step", "optimizer": "SGD", "momentum": MOMENTUM,
                   "seed": args.seed, "split_seed": 0},
        "dataset": {"folder": args.data, "fingerprint": dataset.fingerprint,
                    "n_icons": len(dataset.labels)},
        "split": {"train": len(train_idx), "test": len(test_idx)},
        "parameters": model.n_params(),
        "test_accuracy": final["test_accuracy"],
        "train_accuracy": final["train_accuracy"],
        "train_loss": final["train_loss"],
        "training_seconds": round(seconds, 2),
        "per_epoch": [{k: round(v, 4) for k, v in h.items() if k != "step_losses"}
                      for h in history],
        "environment": environment(),
    }
    out = Path(args.out)
    with interrupts_deferred():  # checkpoint, plots and manifest are written as one
        model.save(out / "checkpoint.npz", meta={"task": args.task, "run": args.task})
        save_plots(history, out, f"TinyViT, task {args.task}", len(names))
        update_manifest(out / "manifest.json", record, "runs", args.task)
    log(f"test accuracy {final['test_accuracy']:.1%} after {args.epochs} epochs, "
        f"{seconds:.1f}s of training; wrote {out / 'checkpoint.npz'}, loss.png, accuracy.png, "
        f"manifest.json")
    return history


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
