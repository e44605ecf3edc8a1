"""The spec's lessons, measured on the icons: what each part of the ViT does (docs/lessons.md).

    uv run python lessons.py              # every lesson's trainings (resumable), then its figures
    uv run python lessons.py --plan       # the trainings still to do, as commands, one a line
    uv run python lessons.py --summary    # only redraw the figures and docs/lessons.md's tables

Each ablation changes one part of a run's model (a train.py option) and keeps everything else:
the run's chosen recipe, trained on train + validation like the final models, scored on the
1000 fresh icons of generator seed 1, factor by factor. The unchanged models are the final
sweep's (results/<run>/seed-<k>/, the same code: results/same_code.json). Patch sizes train a
shortened recipe at every size alike; the attention maps and position embeddings are read off
seed 0 of three runs, trained again here. What needs no training (the nearest-colour baseline,
ViT-Base's size, the text model) is computed as the summary runs. Outputs: results/lessons/
(manifests and the figures docs/lessons.md shows).
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python lessons.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import importlib
import json
import math
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import generate_icons as gi
import sweep
import vit
from eval import HEADS_REACH, head_focus, heads_view, regions, times_bar, times_scale
from minimodel import bench, grid
from minimodel.files import (
    LabError,
    atomic_write,
    from_here,
    manifest_runs,
    printable,
    pyplot,
    read_manifest,
    run_cli,
    same_code,
    save_figure,
    training_code,
)
from minimodel.grammar.tasks import FACTORS
from minimodel.grammar.verbs import PERSONS, TENSES, VERBS
from minimodel.transformer.block import TransformerBlock
from train import MODEL_OPTIONS, cosine_lr, run_label
from vit import SGD, TinyViT, ViTConfig, cross_entropy, n_parameters, pack

LAB = Path(__file__).resolve().parent
RESULTS = LAB / "results" / "lessons"
DOC = LAB / "docs" / "lessons.md"
SEEDS = 3

# --- what is trained -----------------------------------------------------------------------------

ABLATION_RUNS = ("tense", "full_factorised")
ABLATIONS = {  # one part changed: ViTConfig fields (as train.py options), and what it means
    "position-none": ({"position": "none"}, "no position embedding"),
    "pool-mean": ({"pool": "mean"}, "the head reads the mean of the patch tokens (no [CLS])"),
    "attention-self": ({"pool": "mean", "attention": "self"},
                       "no mixing: each token reads only itself (mean pooling)"),
    "blocks1": ({"n_blocks": 1}, "one block instead of four"),
    "bug-patchify": ({}, "patchify without its transpose (a bug)"),
}
PATCH_SIZES = (2, 4, 8, 16)  # 256, 64, 16, 4 patches
PATCH_RUN, PATCH_EPOCHS = "full_factorised", 30  # a tenth of its 300: patch 2 is 6-8× a step
ATTENTION_RUNS = ("tense", "tense_person", "full_factorised")
HEAD_RUNS = {"tense_person": "15 classes", "full_factorised": "300 classes"}  # drawn head by head


def options(overrides):
    """ViTConfig fields -> train.py's options."""
    return [a for option, field, _ in MODEL_OPTIONS if field in overrides
            for a in (option, str(overrides[field]))]


def plan_trainings(data, fresh, same, icons):
    """Every lesson's trainings still to do (not done by this code, on the icons of
    fingerprints `icons`: sweep.done_by_this_code) -> [grid.Training]."""
    todo = []

    def add(what, out, run, seed, overrides, epochs=None, bug=False, inspect=False):
        train_args, want = sweep.final(run, epochs or sweep.recipe(run)["epochs"])
        label = run_label(run, ViTConfig(**overrides))
        checkpoint = out / "checkpoint.npz"
        if sweep.done_by_this_code(out, label, want, same, icons, ("eval_all",)) and (
                not inspect or (out / "inspect.json").exists() and checkpoint.exists()):
            return  # (a model looked inside keeps its checkpoint: the summary draws its heads)
        wrap = ["lessons.py", "--with-bug"] if bug else []
        steps = [[*wrap, "train.py", "--data", data, "--out", out, "--seed", seed, "--no-test",
                  *train_args, *options(overrides)],
                 [*wrap, "eval.py", "--data", fresh, "--all", "--checkpoint", checkpoint]]
        if inspect:
            steps.append(["lessons.py", "--inspect", checkpoint])
        todo.append(grid.Training(what, steps, out))

    for seed in range(SEEDS):
        for name, (overrides, _) in ABLATIONS.items():
            for run in ABLATION_RUNS:
                add(f"{name}: {run}, seed {seed}", RESULTS / name / run / f"seed-{seed}", run,
                    seed, overrides, bug=name == "bug-patchify")
        for p in PATCH_SIZES:
            add(f"patch {p}: {PATCH_RUN}, {PATCH_EPOCHS} epochs, seed {seed}",
                RESULTS / f"patch{p}" / PATCH_RUN / f"seed-{seed}", PATCH_RUN, seed,
                {"patch_size": p}, epochs=PATCH_EPOCHS)
    for run in ATTENTION_RUNS:  # seed 0 of the final models again, to look inside
        add(f"inside: {run}, seed 0", RESULTS / "inside" / run, run, 0, {}, inspect=True)
    return todo


# --- the bug: patchify without its transpose -----------------------------------------------------


def strip_patchify(x, P):
    """The bug: (B, H, W, C) reshaped straight to (B, N, P·P·C), without the transpose. Each
    "patch" is then P·P·C consecutive values in row order: a strip of pixels from P/… rows, not
    a P×P square."""
    B, H, W, C = x.shape
    return x.reshape(B, (H // P) * (W // P), P * P * C)


def strip_unpatchify(patches, P, image_size, channels=3):
    return patches.reshape(patches.shape[0], image_size, image_size, channels)


def with_bug(argv):
    """`lessons.py --with-bug train.py ARGS` (or eval.py): the script with the bug in place."""
    script, rest = argv[0], argv[1:]
    if script not in ("train.py", "eval.py"):
        raise LabError(f"--with-bug runs train.py or eval.py, not {printable(script)}")
    vit.patchify, vit.unpatchify = strip_patchify, strip_unpatchify  # TinyViT calls these
    importlib.import_module(script.removesuffix(".py")).main(rest)


# --- inside a trained model: attention by region, position embeddings ----------------------------


def inspect(checkpoint):
    """`lessons.py --inspect CHECKPOINT`: per block and head, how much of [CLS]'s attention
    goes to each region's patches against their share (1 = uniform), on the fresh icons
    (eval.head_focus); and the position embeddings' cosine similarity. -> inspect.json beside
    the checkpoint."""
    model, meta = TinyViT.load(checkpoint)
    images, _ = gi.render_dataset(1000, sweep.FRESH_SEED)
    ratios, counted = head_focus(model, images, regions(model.cfg))
    found = {"run": meta["run"], "attention_vs_uniform": ratios, "icons_with_region": counted}
    if "pos" in model.params:
        pos = model.params["pos"][0, 1:].astype(np.float64)  # (N, d): the patches' rows
        pos /= np.linalg.norm(pos, axis=1, keepdims=True)
        found["position_cosine"] = np.round(pos @ pos.T, 3).tolist()  # (N, N)
    atomic_write(Path(checkpoint).parent / "inspect.json",
                 lambda f: f.write((json.dumps(found) + "\n").encode()))


# --- what needs no training ----------------------------------------------------------------------


def nearest_colour():
    """The tense read without a model: the mean colour of each fresh icon's shape (pixels far
    from the background and from the ink), then the nearest tense colour -> accuracy."""
    images, labels = gi.render_dataset(1000, sweep.FRESH_SEED)
    x = images.reshape(len(images), -1, 3).astype(np.float64)
    body = ((np.abs(x - gi.BACKGROUND).sum(-1) > 60) & (np.abs(x - gi.INK).sum(-1) > 60))
    mean = (x * body[..., None]).sum(1) / np.maximum(body.sum(1), 1)[:, None]  # (n, 3)
    colours = np.array(list(gi.TENSE_COLOR.values()), dtype=np.float64)
    guess = np.linalg.norm(mean[:, None] - colours[None], axis=-1).argmin(axis=1)
    return float((guess == np.array([lab["tense_id"] for lab in labels])).mean())


VIT_BASE = ViTConfig(image_size=224, patch_size=16, d_model=768, n_heads=12, n_blocks=12,
                     d_ff=3072, n_classes=1000)  # Dosovitskiy et al. (2021), ViT-B/16


def scale():
    """This lab's ViT and ViT-Base as the same ViTConfig: parameters and forward FLOPs."""
    return {name: {"config": asdict(cfg), "parameters": n_parameters(cfg),
                   "tokens": cfg.n_tokens, "gflops_per_image": bench.flops_per_image(cfg) / 1e9}
            for name, cfg in (("this lab", ViTConfig()), ("ViT-Base", VIT_BASE))}


def time_patch_sizes(rounds=3, steps=10, sizes=PATCH_SIZES):
    """The training step's time (batch 32, ms, median) at each patch size, measured side by
    side in one run: the sizes interleaved, `rounds` times."""
    times = {p: [] for p in sizes}
    for _ in range(rounds):
        for p in sizes:
            model = TinyViT(ViTConfig(patch_size=p, n_classes=28))
            r = bench.run(model, SGD(model), cross_entropy, steps=steps, repeats=1,
                          log=lambda _: None)
            times[p].append(r["train_ms_median"])
    return {str(p): round(statistics.median(t), 2) for p, t in times.items()}


# --- modality: the same block, causal, on text -----------------------------------------------------

PAST = {"go": ("went", "gone"), "see": ("saw", "seen"), "eat": ("ate", "eaten"),
        "write": ("wrote", "written"), "read": ("read", "read"), "run": ("ran", "run"),
        "speak": ("spoke", "spoken"), "take": ("took", "taken"), "give": ("gave", "given"),
        "make": ("made", "made"), "come": ("came", "come"), "know": ("knew", "known"),
        "think": ("thought", "thought"), "drink": ("drank", "drunk"),
        "sleep": ("slept", "slept"), "swim": ("swam", "swum"), "sing": ("sang", "sung"),
        "buy": ("bought", "bought")}  # work and play: -ed


def phrase(verb, tense, person):
    """The verb form as a short English phrase: 'he has gone.'"""
    past, participle = PAST.get(verb, (verb + "ed", verb + "ed"))
    who = {"1sg": "I", "2sg": "you", "3sg": "he"}[person]
    third = person == "3sg"
    return {"infinitive": f"to {verb}",
            "present_simple": f"{who} {verb + ('es' if verb == 'go' else 's') if third else verb}",
            "past_simple": f"{who} {past}",
            "past_participle": f"{who} {'has' if third else 'have'} {participle}",
            "future": f"{who} will {verb}"}[tense] + "."


class TinyGPT:
    """Characters -> embedding + positions -> causal TransformerBlocks -> LayerNorm -> head:
    the ViT's block, with causal=True, and a lookup table where the ViT has patchify."""

    def __init__(self, vocab, context, d=48, n_heads=4, n_blocks=2, seed=0):
        self.rng = np.random.default_rng(seed)
        self.params = {"emb": self.rng.normal(0, 0.02, (vocab, d)),
                       "pos": self.rng.normal(0, 0.02, (context, d)),
                       "ln_gain": np.ones(d), "ln_bias": np.zeros(d),
                       "W_head": np.zeros((d, vocab)), "b_head": np.zeros(vocab)}
        self.params = {k: v.astype(np.float32) for k, v in self.params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.blocks = [TransformerBlock(d, n_heads, 4 * d, causal=True, rng=self.rng)
                       for _ in range(n_blocks)]
        self.ops = self.blocks[0].ops
        self.flat_params = pack([self.params] + [b.params for b in self.blocks])
        self.flat_grads = pack([self.grads] + [b.grads for b in self.blocks])

    def forward(self, tokens, train=False):
        """tokens (B, T) ints -> logits (B, T, vocab): each position predicts the next."""
        p, L = self.params, self.ops
        x = p["emb"][tokens] + p["pos"][: tokens.shape[1]]  # (B, T, d)
        for block in self.blocks:
            x = block.forward(x, train)
        h, self.c_ln = L.layernorm_forward(x, p["ln_gain"], p["ln_bias"])
        logits, self.c_head = L.linear_forward(h, p["W_head"], p["b_head"])
        self.tokens = tokens
        return logits

    def backward(self, dlogits):
        """dlogits (B, T, vocab); adds into every gradient (clear flat_grads between steps)."""
        g, L = self.grads, self.ops
        dh, dW, db = L.linear_backward(dlogits, self.c_head)
        g["W_head"] += dW
        g["b_head"] += db
        dx, dgain, dbias = L.layernorm_backward(dh, self.c_ln)
        g["ln_gain"] += dgain
        g["ln_bias"] += dbias
        for block in reversed(self.blocks):  # (B, T, d)
            dx = block.backward(dx)
        np.add.at(g["emb"], self.tokens, dx)  # each token's row gets its positions' gradients
        g["pos"][: dx.shape[1]] += dx.sum(axis=0)


TEXT_STEPS = 2000


def text_lesson(steps=None, batch=64, lr=0.3, seed=0):
    """Train TinyGPT on every verb form's phrase, character by character, with the lab's SGD,
    cross-entropy and cosine schedule -> its loss curve, a few completions and its time."""
    phrases = sorted({phrase(v, t, p) for v in VERBS for t in TENSES for p in PERSONS})
    chars = sorted({c for s in phrases for c in s} | {"^"})  # ^ starts every phrase
    T = max(map(len, phrases)) + 1
    ids = np.array([[chars.index(c) for c in ("^" + s).ljust(T + 1, ".")] for s in phrases])
    model, steps = TinyGPT(len(chars), T, seed=seed), steps or TEXT_STEPS
    opt, rng, losses = SGD(model), np.random.default_rng(seed), []
    t0 = time.perf_counter()
    for step in range(steps):
        rows = ids[rng.integers(0, len(ids), batch)]  # (B, T + 1)
        logits = model.forward(rows[:, :-1], train=True)  # (B, T, V)
        loss, dlogits = cross_entropy(logits.reshape(-1, len(chars)), rows[:, 1:].ravel())
        model.flat_grads.fill(0)
        model.backward(dlogits.reshape(logits.shape))
        opt.step(cosine_lr(step, steps, lr))
        losses.append(loss)
    seconds = time.perf_counter() - t0

    def complete(prompt):
        tokens = [chars.index(c) for c in "^" + prompt]
        while len(tokens) <= T and chars[tokens[-1]] != ".":
            tokens.append(int(model.forward(np.array([tokens]))[0, -1].argmax()))
        return "".join(chars[t] for t in tokens[1:])

    prompts = ["he g", "you have s", "I w", "he has d", "to ", "you b"]
    return {"phrases": len(phrases), "examples": phrases[:6], "vocabulary": len(chars),
            "context": T, "steps": steps, "batch": batch, "lr": lr, "seconds": round(seconds, 1),
            "parameters": int(model.flat_params.size),
            "loss": [round(float(np.mean(losses[i:i + 25])), 4) for i in range(0, steps, 25)],
            "completions": {p: complete(p) for p in prompts}, "training_code": training_code(LAB)}


# --- reading the results ---------------------------------------------------------------------------


LEFT_OUT = {}  # manifest -> the line saying why the summary left it out, said at its end
ICONS = None  # the fingerprint of the icons whose results the summary reads (main sets it)
FIELDS = {"training_seconds": sweep.NUMBER, "eval_all.accuracy": sweep.NUMBER,
          "eval_all.factor_accuracy": dict}  # what the tables and figures read


def entry_of(folder):
    """The one run entry of a folder's manifest as the summary reads it (sweep.checked_entry:
    there, scored, of the right types, trained on the icons ICONS), or None, with the reason
    kept in LEFT_OUT."""
    path = folder / "manifest.json"
    try:
        runs = manifest_runs(path) if path.is_file() else {}
    except LabError:  # (checked_entry says what is wrong with it)
        runs = {}
    return sweep.checked_entry(path, next(iter(runs)) if len(runs) == 1 else None, FIELDS,
                               say=lambda line: LEFT_OUT.setdefault(path, line), icons=ICONS)


def scores(folders):
    """{"all": [% per seed], "verb": [...], ...} of the folders' fresh-icon scores."""
    out = {}
    for entry in filter(None, map(entry_of, folders)):
        fresh = entry["eval_all"]
        out.setdefault("all", []).append(100 * fresh["accuracy"])
        for factor, acc in fresh["factor_accuracy"].items():
            if factor in FACTORS:
                out.setdefault(factor, []).append(100 * acc)
        out.setdefault("seconds", []).append(entry["training_seconds"])
    return out


def baseline(run):
    return [sweep.RESULTS / run / f"seed-{k}" for k in range(SEEDS)]


def variants(run, names=tuple(ABLATIONS)):
    """{name: folders} of a run: the final model (unchanged), then the ablations `names`."""
    return {"final model": baseline(run),
            **{name: [RESULTS / name / run / f"seed-{k}" for k in range(SEEDS)]
               for name in names}}


def cell(values):
    return sweep.mean_range(values) if values else "—"


def ablation_table(run, names=tuple(ABLATIONS)):
    factors = ["all", *(("verb", "tense", "person") if run != "tense" else ())]
    rows = [f"| {run}: model | seeds | " + " | ".join(
        "fresh %" if f == "all" else f"{f} %" for f in factors) + " | training s |",
        "|---|---|" + "---|" * len(factors) + "---|"]
    for name, folders in variants(run, names).items():
        s = scores(folders)
        what = ABLATIONS[name][1] if name in ABLATIONS else "the final model, unchanged"
        rows.append(f"| {what} | {len(s.get('all', []))} | " +
                    " | ".join(cell(s.get(f)) for f in factors) +
                    f" | {statistics.median(s['seconds']):.0f} |" if s else
                    f"| {what} | 0 | " + " | ".join("—" for _ in factors) + " | — |")
    return "\n".join(rows)


def patch_table(times):
    rows = [("| patch | tokens | training step, ms (batch 32) | fresh % | verb % | tense % | "
            "person % |"), "|---|---|---|---|---|---|---|"]
    for p in PATCH_SIZES:
        s = scores([RESULTS / f"patch{p}" / PATCH_RUN / f"seed-{k}" for k in range(SEEDS)])
        rows.append(f"| {p}×{p} | {(32 // p) ** 2} | {times.get(str(p), '—')} | " +
                    " | ".join(cell(s.get(f)) for f in ("all", "verb", "tense", "person")) + " |")
    return "\n".join(rows)


def inspected():
    """{run: inspect.json} of the models looked inside."""
    found = {}
    for run in ATTENTION_RUNS:
        path = RESULTS / "inside" / run / "inspect.json"
        if path.exists():
            found[run] = json.loads(path.read_text())
    return found


def attention_table(inside):
    rows = ["| model | block | [CLS] → outline, per head (× uniform) | → inside | → background |",
            "|---|---|---|---|---|"]
    for run, found in inside.items():
        a = found["attention_vs_uniform"]
        for b in range(len(a["outline"])):
            rows.append(f"| {run} | {b} | " + " | ".join(
                ", ".join(f"{v:.2f}" for v in a[r][b]) for r in ("outline", "inside",
                                                                  "background")) + " |")
    return "\n".join(rows)


# --- figures -------------------------------------------------------------------------------------


def ablation_figure(path):
    """Each ablation's fresh icons missed, per 1000, factor by factor, on a log axis (where the
    differences between 99% and 99.9% can be seen): the seeds' mean and their range."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(1, 2.2),
                             layout="constrained")
    for ax, run in zip(axes, ABLATION_RUNS):
        factors = ["all", *(("verb", "tense", "person") if run != "tense" else ())]
        names = list(variants(run))
        width = 0.8 / len(factors)
        for j, factor in enumerate(factors):
            for i, name in enumerate(names):
                values = scores(variants(run)[name]).get(factor, [])
                if not values:
                    continue
                missed = [max(10 * (100 - v), 0.5) for v in values]  # per 1000; 0 drawn at 0.5
                x = i + (j - (len(factors) - 1) / 2) * width
                mean = statistics.mean(missed)
                ax.errorbar(x, mean, yerr=[[mean - min(missed)], [max(missed) - mean]], fmt="o",
                            color=f"C{j}", capsize=2, label=factor if i == 0 else None)
        ax.set_yscale("log")
        ax.set_ylim(0.4, 1000)
        ax.set_yticks([0.5, 1, 10, 100, 1000], ["0", "1", "10", "100", "1000"])
        ax.set_xticks(range(len(names)), [n.replace("-", "\n") for n in names], fontsize=8)
        ax.set(ylabel="fresh icons missed, per 1000 (log)", title=run)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", title="factor", title_fontsize=8)
    fig.suptitle("One part changed at a time, everything else the run's chosen recipe: misses on "
                 f"1000 fresh icons, mean of {SEEDS} seeds (dot) and their range")
    save_figure(fig, path)


def patch_figure(times, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.4), layout="constrained")
    for j, factor in enumerate(("all", "verb", "tense", "person")):
        xs, ys = [], []
        for p in PATCH_SIZES:
            s = scores([RESULTS / f"patch{p}" / PATCH_RUN / f"seed-{k}" for k in range(SEEDS)])
            if s.get(factor) and str(p) in times:
                xs.append(times[str(p)])
                ys.append(statistics.mean(s[factor]))
        ax.plot(xs, ys, "o-", color=f"C{j}", label=factor)
        if factor == "all":
            for x, y, p in zip(xs, ys, PATCH_SIZES):
                ax.annotate(f"patch {p}", (x, y), textcoords="offset points", xytext=(4, -12),
                            fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.12)  # room for the last point's label
    plain_log(ax.xaxis)
    ax.set(xlabel="training step, ms (batch 32, this machine, log scale)",
           ylabel="fresh icons right (%)", title=f"Patch size: accuracy against cost "
           f"({PATCH_RUN}, {PATCH_EPOCHS} epochs at every size)")
    ax.grid(alpha=0.3)
    ax.legend(title="factor", fontsize=8)
    save_figure(fig, path)


def position_figure(inside, path):
    """Each patch position's embedding against every other's (cosine), as the ViT paper's
    Figure 7: an n×n grid of n×n maps."""
    runs = [r for r in inside if "position_cosine" in inside[r]]
    plt = pyplot()
    fig = plt.figure(figsize=(5.2 * len(runs), 5.6), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(1, len(runs)))
    for sub, run in zip(subfigs, runs):
        cos = np.array(inside[run]["position_cosine"])  # (N, N)
        n = math.isqrt(len(cos))
        axes = sub.subplots(n, n, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
        for k, ax in enumerate(axes.flat):
            shown = ax.imshow(cos[k].reshape(n, n), cmap="viridis", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        sub.suptitle(f"{run}, seed 0", fontsize=10)
        sub.colorbar(shown, ax=axes, shrink=0.6, label="cosine similarity")
    fig.suptitle("Position embeddings: the map at row i, column j compares patch (i, j)'s "
                 "embedding with every patch's")
    save_figure(fig, path)


def attention_figure(inside, path):
    plt = pyplot()
    runs = list(inside)
    fig, axes = plt.subplots(2, len(runs), figsize=(3.6 * len(runs), 6.4), squeeze=False,
                             layout="constrained")
    for j, run in enumerate(runs):
        for i, region in enumerate(("outline", "inside")):
            a = np.array(inside[run]["attention_vs_uniform"][region])  # (blocks, heads)
            ax = axes[i, j]
            shown = ax.imshow(a, cmap="RdBu_r", norm=times_scale(HEADS_REACH), aspect="auto")
            for (b, h), v in np.ndenumerate(a):  # white on the dark ends of the scale
                ax.text(h, b, f"{v:.2g}", ha="center", va="center", fontsize=8,
                        color="white" if abs(math.log(max(v, 1e-3))) > math.log(4) else "black")
            ax.set(xlabel="head", ylabel="block", title=f"{run}: [CLS] → {region}")
            ax.set_xticks(range(a.shape[1]))
            ax.set_yticks(range(a.shape[0]))
    times_bar(fig, shown, axes, "attention to the region ÷ its share of the "
              "patches (1 = uniform)", shrink=0.6, extend="both")
    fig.suptitle("Where each head of each block looks, on the 1000 fresh icons:\nthe outline "
                 "carries the person, the inside the colour and the verb's texture")
    save_figure(fig, path)


def heads_figure(inside, path):
    """The attention lesson's picture: HEAD_RUNS' most outline-bound and most inside-bound
    heads over fresh icons (eval.heads_view), from their checkpoints, where each is here and is
    the model its inspect.json describes; else the figure is left as it is, with a line why."""
    runs = []
    for run, name in HEAD_RUNS.items():
        checkpoint = RESULTS / "inside" / run / "checkpoint.npz"
        if run not in inside or not checkpoint.exists():
            return print(f"{from_here(path)} left as it is: {from_here(checkpoint)} is not here "
                         f"(checkpoints are not committed; `lessons.py` trains it again)")
        runs.append((name, TinyViT.load(checkpoint)[0]))
    fig, measured = heads_view(runs)
    for run, ratios in zip(HEAD_RUNS, measured):
        if ratios != inside[run]["attention_vs_uniform"]:
            pyplot().close(fig)
            return print(f"{from_here(path)} left as it is: {from_here(RESULTS / 'inside' / run)}"
                         f"/checkpoint.npz is not the model its inspect.json measured")
    save_figure(fig, path)


def plain_log(axis):
    """A log axis's tick labels in plain numbers (0.3, 2, 100, not 3×10⁻¹), at the ticks
    matplotlib picks."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False))


def text_figure(text, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.plot(np.arange(len(text["loss"])) * 25 + 12, text["loss"])
    ax.axhline(math.log(text["vocabulary"]), color="gray", ls=":",
               label=f"chance, ln {text['vocabulary']}")
    ax.set(xlabel="step", ylabel="cross-entropy, next character (mean of 25 steps)",
           yscale="log", title=f"The same TransformerBlock, causal, on the verb forms as text "
           f"({text['seconds']:.0f} s)")
    plain_log(ax.yaxis)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


# --- the summary -----------------------------------------------------------------------------------

MARK = "<!-- lessons:{}: made by `python lessons.py --summary` -->"
END = "<!-- end of lessons:{} -->"
README = LAB / "README.md"


def mean_of(folders, factor="all"):
    values = scores(folders).get(factor)
    return f"{statistics.mean(values):.1f}%" if values else "—"


def headlines(extra, inside, text):
    """The README's line per lesson: its headline numbers and a link."""
    def at(name, run, factor="all"):
        return mean_of([RESULTS / name / run / f"seed-{k}" for k in range(SEEDS)], factor)

    def final(run, factor="all"):
        return mean_of(baseline(run), factor)

    ff = "full_factorised"
    link = "docs/lessons.md#{}"
    lines = [
        (f"- **Position** ([more]({link.format('position')})): without a position embedding the "
        f"300-class model reads {at('position-none', ff)} of the fresh icons, their person "
        f"{at('position-none', ff, 'person')} (learned: {final(ff)}, "
        f"{final(ff, 'person')}); tense {at('position-none', 'tense')} ({final('tense')})."),
        (f"- **Mixing** ([more]({link.format('mixing')})): tokens that read only themselves: "
        f"{at('attention-self', ff)}, person {at('attention-self', ff, 'person')}, verb "
        f"{at('attention-self', ff, 'verb')} (attention, mean pooling: "
        f"{at('pool-mean', ff)})."),
        (f"- **Pooling** ([more]({link.format('pooling')})): the mean of the patch tokens "
        f"{at('pool-mean', ff)}, [CLS] {final(ff)} (300 classes); tense "
        f"{at('pool-mean', 'tense')}, {final('tense')}."),
        "- **Patch size** ([more]({})): ".format(link.format("patch-size")) + ", ".join(
            f"{p}×{p}: {mean_of([RESULTS / f'patch{p}' / PATCH_RUN / f'seed-{k}' for k in range(SEEDS)])}"
            f" ({float(extra.get('patch_step_ms', {}).get(str(p), 'nan')):.0f} ms a step)"
            for p in PATCH_SIZES) + f" ({PATCH_EPOCHS} epochs, 300 classes).",
    ]
    if inside:
        best = {run: max((v, b, h) for b, row in enumerate(found["attention_vs_uniform"]["outline"])
                         for h, v in enumerate(row)) for run, found in inside.items()}
        lines.append(f"- **Attention** ([more]({link.format('attention')})): [CLS]'s most "
                     f"outline-bound head attends to the outline " + ", ".join(
                         f"{v:.1f}× uniform ({run}, block {b} head {h})"
                         for run, (v, b, h) in best.items()) + ".")
    lines += [
        (f"- **Baselines** ([more]({link.format('baselines')})): the nearest tense colour, no "
        f"training: {100 * extra['nearest_colour']:.1f}% of tenses; one block: "
        f"{at('blocks1', 'tense')} (tense), {at('blocks1', ff)} (300 classes)."),
        (f"- **Scale** ([more]({link.format('scale')})): ViT-Base is the same `ViTConfig` with "
        f"{extra['scale']['ViT-Base']['parameters']:,} parameters, "
        f"{extra['scale']['ViT-Base']['parameters'] / extra['scale']['this lab']['parameters']:.0f}"
        f"× this one's."),
    ]
    if text:
        prompt, done = next(iter(text["completions"].items()))
        lines.append(f"- **Text** ([more]({link.format('text')})): the same block, causal, learns "
                     f"the verb forms as characters in {text['seconds']:.0f} s: `{prompt}` → "
                     f"`{done}`.")
    lines.append(f"- **A bug the accuracy hides** ([more]({link.format('a-bug-the-accuracy-hides')}"
                 f")): patchify without its transpose still reads {at('bug-patchify', 'tense')} "
                 f"(tense) and {at('bug-patchify', ff)} (300 classes).")
    return "\n".join(lines)


def summarise(icons=None):
    """Figures into results/lessons/, tables into docs/lessons.md, from what results/lessons/
    holds of the icons of fingerprint `icons` (and what needs no training, computed now); every
    seed left out is named. (For other icons than the lab's, DOC is None: tables printed.)"""
    global ICONS
    ICONS = icons
    LEFT_OUT.clear()
    extra_path = RESULTS / "computed.json"
    extra = read_manifest(extra_path)
    extra.update(nearest_colour=nearest_colour(), scale=scale())
    inside = inspected()
    text = extra.get("text")
    def ablations(*names):
        return "\n\n".join(ablation_table(run, names) for run in ABLATION_RUNS)

    tables = {
        "position": ablations("position-none"),
        "mixing": ablations("pool-mean", "attention-self"),
        "pooling": ablations("pool-mean"),
        "bug": ablations("bug-patchify"),
        "patch": patch_table(extra.get("patch_step_ms", {})),
        "attention": attention_table(inside),
        "baselines": baseline_table(extra) + "\n\n" + ablations("blocks1"),
        "scale": scale_table(extra["scale"]),
        "text": text_table(text) if text else "not run yet",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(extra_path, lambda f: f.write((json.dumps(extra, indent=1) + "\n").encode()))
    ablation_figure(RESULTS / "ablations.png")
    patch_figure(extra.get("patch_step_ms", {}), RESULTS / "patch_size.png")
    if inside:
        position_figure(inside, RESULTS / "position_similarity.png")
        attention_figure(inside, RESULTS / "attention_heads.png")
        heads_figure(inside, RESULTS / "cls_heads.png")
    if text:
        text_figure(text, RESULTS / "text_loss.png")
    tables["lines"] = headlines(extra, inside, text)
    for line in sorted(LEFT_OUT.values()):
        print(line)
    if DOC is None:
        print("\n\n".join(f"lessons:{key}\n{table}" for key, table in tables.items()))
        print(f"wrote the figures to {from_here(RESULTS)}/; docs/lessons.md and the README are "
              f"the lab's, left as they are")
        return
    DOC.parent.mkdir(parents=True, exist_ok=True)
    for path in (DOC, README):
        doc = path.read_text()
        for key, table in tables.items():
            start, end = doc.find(MARK.format(key)), doc.find(END.format(key))
            if start >= 0 and end > start:
                doc = doc[:start + len(MARK.format(key))] + "\n" + table + "\n" + doc[end:]
            elif path == DOC and key != "lines" or path == README and key == "lines":
                raise LabError(f"{path}: the markers of lessons:{key} are missing")
        atomic_write(path, lambda f, doc=doc: f.write(doc.encode()))
    print(f"wrote the figures to {from_here(RESULTS)}/ and the tables to {from_here(DOC)}")


def baseline_table(extra):
    one = {run: scores([RESULTS / "blocks1" / run / f"seed-{k}" for k in range(SEEDS)])
           for run in ABLATION_RUNS}
    full = {run: scores(baseline(run)) for run in ABLATION_RUNS}
    return "\n".join([
        "| reader of the tense | fresh icons: tense right % |", "|---|---|",
        (f"| nearest tense colour to the shape's mean colour (no training) | "
        f"{100 * extra['nearest_colour']:.1f} |"),
        f"| one block, tense task | {cell(one['tense'].get('all'))} |",
        f"| four blocks (the final model), tense task | {cell(full['tense'].get('all'))} |"])


def scale_table(found):
    small, base = found["this lab"], found["ViT-Base"]
    return "\n".join([
        ("| | image | patch | tokens | width | heads | blocks | MLP | classes | parameters | "
        "GFLOP per image (forward) |"), "|---|---|---|---|---|---|---|---|---|---|---|",
        *(f"| {name} | {c['image_size']} | {c['patch_size']} | {f['tokens']} | {c['d_model']} | "
          f"{c['n_heads']} | {c['n_blocks']} | {c['d_ff']} | {c['n_classes']} | "
          f"{f['parameters']:,} | {f['gflops_per_image']:.3f} |"
          for name, f in found.items() for c in [f["config"]]),
        (f"| ratio | | | | | | | | | {base['parameters'] / small['parameters']:.0f}× | "
        f"{base['gflops_per_image'] / small['gflops_per_image']:.0f}× |")])


def text_table(text):
    return "\n".join([
        (f"{text['phrases']} phrases (e.g. {', '.join(repr(p) for p in text['examples'][:4])}), "
        f"{text['vocabulary']} characters, a {text['parameters']:,}-parameter model of two "
        f"causal blocks, {text['steps']} steps of SGD (batch {text['batch']}, LR {text['lr']}, "
        f"cosine): {text['seconds']:.0f} s; loss {text['loss'][0]:.2f} → {text['loss'][-1]:.2f} "
        f"nats. Greedy completions:"), "", "| prompt | completion |", "|---|---|",
        *(f"| `{p}` | `{c}` |" for p, c in text["completions"].items())])


# --- main ------------------------------------------------------------------------------------------


def measure_untrained(extra_path):
    """The patch sizes' step times and the text model: measured here, once per code."""
    extra = read_manifest(extra_path)
    code, same = training_code(LAB), same_code(LAB)
    if extra.get("patch_code") not in same:
        print("timing the training step at each patch size, side by side ...", flush=True)
        extra.update(patch_step_ms=time_patch_sizes(), patch_code=code,
                     patch_cpu=grid_cpu())
    if (extra.get("text") or {}).get("training_code") not in same:
        print("training the causal block on the verb forms as text ...", flush=True)
        extra["text"] = text_lesson()
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write(extra_path, lambda f: f.write((json.dumps(extra, indent=1) + "\n").encode()))


def grid_cpu():
    from train import environment

    env = environment()
    return {"cpu": env["cpu"], "blas_kernel": env["blas"]["kernel"], "cores": env["cores"]}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--with-bug"]:
        return with_bug(argv[1:])
    ap = argparse.ArgumentParser(description="Measure what each part of the ViT does: "
                                 "ablations, patch sizes, attention, baselines, scale, text.")
    ap.add_argument("--summary", action="store_true", help="only redraw the figures and tables")
    ap.add_argument("--plan", action="store_true", help="print the trainings still to do as "
                    "commands, one a line, for any scheduler (then run --summary)")
    ap.add_argument("--jobs", type=int, default=grid.default_jobs(),
                    help=f"trainings at once (default here: {grid.default_jobs()})")
    ap.add_argument("--data", default=str(sweep.DATA), help="folder made by "
                    "generate_icons.py (default: the lab's data/; the lessons of other icons go "
                    "to runs/results-<folder>-<fingerprint>/lessons/)")
    ap.add_argument("--inspect", metavar="CHECKPOINT", help=argparse.SUPPRESS)  # a grid step
    args = ap.parse_args(argv)
    if args.inspect:
        return inspect(Path(args.inspect))
    if not 1 <= args.jobs <= 256:
        ap.error(f"--jobs must be between 1 and 256, got {args.jobs}")
    data = Path(args.data).resolve()
    root, icons = sweep.results_for(data)
    if root is not None:  # other icons than the lab's: their lessons under runs/ too
        global RESULTS, DOC, README
        sweep.move_results(root)
        RESULTS, DOC, README = root / "lessons", None, None
    if not args.summary:
        fresh, draw = sweep.fresh_icons()
        todo = plan_trainings(data, fresh, same_code(LAB), {
            "train": icons, "fresh": sweep.fingerprint_of(fresh, 1000, sweep.FRESH_SEED)})
        if not args.plan:  # first, while the machine is quiet: the step times are compared
            measure_untrained(RESULTS / "computed.json")
        sweep.execute(todo, args, before=[draw])
        if args.plan:
            return
    summarise(icons)


if __name__ == "__main__":
    run_cli(main)
