"""The lab's results: recipes chosen on validation icons over several seeds, then final models
trained on train + validation, scored once on the test icons and on 1000 fresh icons.

    uv run python sweep.py --select        # every candidate recipe × 3 seeds, validation only
    uv run python sweep.py                 # the chosen recipe of every run × 5 seeds
    uv run python sweep.py --summary       # only rebuild the tables and plots from results/
    uv run python sweep.py --scaling       # the 300-class runs on 500-8000 icons
    uv run python sweep.py --plan          # the trainings still to do, as commands

Every grid is resumable: a (run, seed) already done by the same training code (train.py's
`training_code` fingerprint, or one results/same_code.json records as giving the same weights),
the same recipe and the same icons (their fingerprints) is skipped. results/ holds the lab's
results, made on its data/; a sweep of other icons (--data) writes under runs/results-.../. Each training runs train.py and eval.py as programs, `--jobs` at
once. The selection keeps its figures in results/selection.json (the test icons are not scored:
train.py --no-test); the finals go to results/<run>/seed-<seed>/manifest.json; the README's table
against the spec and docs/report.md's tables are written from them.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python sweep.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

import generate_icons as gi
from minimodel import grid
from minimodel.data import fingerprint, load_dataset
from minimodel.files import (
    LabError,
    Outputs,
    atomic_write,
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
from minimodel.recipes import recipe

LAB = Path(__file__).resolve().parent
DATA = LAB / "data"  # the lab's icons, on which results/ is made
RESULTS = LAB / "results"
SELECTION = RESULTS / "selection.json"
SELECT_RUNS = LAB / "runs" / "select"  # each candidate training's own folder
FRESH_SEED = gi.FRESH_SEED  # the icons' generator seed for the fresh test set
SELECT_SEEDS = 3  # seeds 0..2 score each candidate on the validation icons


def candidate(task, epochs, lr, shift, *more):
    """train.py's arguments for a candidate recipe."""
    return ["--task", task, *more, "--epochs", str(epochs), "--lr", str(lr), "--shift",
            str(shift)]


SPEC = ["--epochs", "20", "--lr", "0.001"]  # the spec's recipe: SGD, momentum 0.9, batch 32
HEADS = {"full": [], "full_factorised": ["--head", "factorised"],
         "full_factorised_combos": ["--head", "factorised", "--split", "combos"]}

# the recipes tried for each run, simplest first: a later one is chosen only when its
# validation mean beats the choice so far by more than its own spread over the seeds.
# results/selection.json also keeps the candidates of levers that lost and left the code
# (AdamW with weight decay, label smoothing and warm-up, DeiT's levers at this lab's scale).
CANDIDATES = {
    "tense": {"spec": ["--task", "tense", *SPEC],
              "spec, shift 1": ["--task", "tense", *SPEC, "--shift", "1"],
              "spec, shift 2": ["--task", "tense", *SPEC, "--shift", "2"]},
    "tense_person": {
        "sgd 0.05, shift 2, 100 epochs": candidate("tense_person", 100, 0.05, 2),
        "sgd 0.05, shift 4, 100 epochs": candidate("tense_person", 100, 0.05, 4)},
    **{run: {
        "sgd 0.05, shift 2, 100 epochs": candidate("full", 100, 0.05, 2, *head),
        "sgd 0.05, shift 2, 300 epochs": candidate("full", 300, 0.05, 2, *head),
        "sgd 0.05, shift 4, 300 epochs": candidate("full", 300, 0.05, 4, *head)}
       for run, head in HEADS.items()},
}
# the flat head is the furthest from its goal: one longer schedule still
CANDIDATES["full"]["sgd 0.05, shift 4, 500 epochs"] = candidate("full", 500, 0.05, 4)
# the choice, as results/selection.json has it; minimodel.recipes holds it as train.py trains
# it (tests check that all three agree)
CHOSEN = {"tense": "spec", "tense_person": "sgd 0.05, shift 2, 100 epochs",
          "full": "sgd 0.05, shift 2, 300 epochs",
          "full_factorised": "sgd 0.05, shift 2, 300 epochs",
          "full_factorised_combos": "sgd 0.05, shift 2, 300 epochs"}
# each run's train.py arguments: which task, head and split; its recipe is its chosen one
RUNS = {"tense": ["--task", "tense"], "tense_person": ["--task", "tense_person"],
        **{run: ["--task", "full", *head] for run, head in HEADS.items()}}
# the README's goals: mean test % over the seeds
GOALS = {"tense": 99.5, "tense_person": 99.5, "full": 95.0, "full_factorised": 99.0,
         "full_factorised_combos": 97.0}
MARKERS = {  # where the summaries write: (file in the lab, begin marker, end marker)
    "spec": ("README.md", "<!-- spec-table: made by `python sweep.py --summary` -->",
             "<!-- end of spec-table -->"),
    "results": ("docs/report.md", "<!-- results-table: made by `python sweep.py --summary` -->",
                "<!-- end of results-table -->"),
    "selection": ("docs/report.md",
                  "<!-- selection-table: made by `python sweep.py --summary` -->",
                  "<!-- end of selection-table -->"),
    "scaling": ("docs/report.md", "<!-- scaling: made by `python sweep.py --scaling` -->",
                "<!-- end of scaling -->")}
# the spec's acceptance, by run: the least test accuracy (%), and what the spec says
ACCEPTANCE = {"tense": (80, "≥ 80% in ≤ 5 min"), "tense_person": (70, "≥ 70% (stretch)"),
              "full": (30, "≥ 30% (stretch)"), "full_factorised": (30, "≥ 30% (stretch)"),
              "full_factorised_combos": (None, "not in the spec")}


def script(*args):
    """Run one of the lab's scripts as a program; stop the sweep if it fails."""
    done = subprocess.run([sys.executable, *map(str, args)], cwd=LAB, check=False,
                          env=grid.child_env())
    if done.returncode:
        raise LabError(f"`{' '.join(map(str, args))}` failed (exit {done.returncode})")


DATA_CACHE = LAB / "runs" / "sweep-data"  # icons a grid generates (never committed: runs/)


def fresh_icons():
    """The fresh icons' folder and the command that draws them."""
    out = DATA_CACHE / f"fresh-seed{FRESH_SEED}"
    return out, ["generate_icons.py", "--out", out, "--seed", FRESH_SEED]


def fingerprint_of(folder, n=None, seed=None):
    """The dataset fingerprint of the icons in `folder`; for icons a grid draws itself
    (generate_icons.py --n n --seed seed) and has not yet, of those it will draw, rendered in
    memory (about 1.5 s a thousand icons)."""
    folder = Path(folder)
    if n is None or (folder / "labels.json").exists():
        return load_dataset(folder).fingerprint
    import generate_icons  # (a script, for its renderer: only when the icons are not drawn yet)

    print(f"# drawing the {n} icons of {from_here(folder)} in memory, to know their "
          f"fingerprint", flush=True)
    images, labels = generate_icons.render_dataset(n, seed)
    return fingerprint(images, labels, generate_icons.draw_splits(labels))


def results_for(data):
    """Where a sweep of the icons in `data` keeps its results: None (RESULTS, as it is) for the
    lab's icons (DATA, or a copy: the same fingerprint), else runs/results-<folder>-<fingerprint>/,
    since results/ holds the lab's results, committed. -> (folder or None, the fingerprint)"""
    mine, lab = fingerprint_of(Path(data).resolve()), Path(DATA).resolve()
    try:
        theirs = fingerprint_of(lab) if Path(data).resolve() != lab else mine
    except LabError:  # no readable icons of the lab's: these are not its
        theirs = None
    return (None if mine == theirs else
            LAB / "runs" / f"results-{Path(data).name}-{mine[:8]}"), mine


def move_results(root):
    """Point the grids and summaries at `root`, another icons' results folder (None: stay)."""
    global RESULTS, SELECTION, SELECT_RUNS
    if root is not None:
        print(f"# these icons are not the lab's data/: their results go to {from_here(root)}/, "
              f"and the README and docs/ are left as they are", flush=True)
        RESULTS, SELECTION, SELECT_RUNS = root, root / "selection.json", root / "select"


def execute(trainings, args, before=(), on_done=None):
    """A grid's trainings: printed as commands (--plan), or the data they need generated (the
    steps `before`) and then run, --jobs at once."""
    if args.plan:
        return grid.plan(trainings, LAB, before if trainings else ())
    print(f"{len(trainings)} trainings to do, {args.jobs} at once", flush=True)
    if trainings:
        for step in before:
            script(*step)
    grid.run_all(trainings, LAB, args.jobs, on_done, logs=DATA_CACHE.parent / "sweep-logs")


# --- selection: validation icons only ------------------------------------------------------------


def spread(values):
    """max − min."""
    return max(values) - min(values)


def choose(candidates):
    """The label chosen among {label: {"val": [accuracy per seed]}}, in the order given: a
    candidate replaces the choice so far only if its mean is higher by more than its own
    spread (max − min over the seeds): a win must stand clear of the winner's seed-to-seed
    noise. (Not the larger of the two spreads: that made a noisy choice unbeatable, so the
    noisier a recipe, the surer it would stay chosen.)"""
    labels = list(candidates)
    chosen = labels[0]
    for label in labels[1:]:
        new, old = candidates[label]["val"], candidates[chosen]["val"]
        if statistics.mean(new) - statistics.mean(old) > spread(new):
            chosen = label
    return chosen


def select(data, runs, args):
    """Train each candidate recipe of each run with seeds 0..SELECT_SEEDS-1, validation only,
    and record every seed's validation accuracy in results/selection.json (from each training's
    own folder under runs/select/, so trainings run by another scheduler are picked up too)."""
    tried = read_selection()
    same = same_code(LAB)
    icons = fingerprint_of(Path(data).resolve())
    todo, where = [], {}
    for run in runs:
        for label in CANDIDATES[run]:
            for seed in range(SELECT_SEEDS):
                known = tried.get(run, {}).get(label, {})
                done = known.get("seeds", {}).get(str(seed), {})
                if (done.get("training_code") in same and done.get("dataset") == icons
                        and known["args"] == CANDIDATES[run][label]):
                    continue
                out = SELECT_RUNS / run / label.replace(", ", "-").replace(" ", "") \
                    / f"seed-{seed}"
                training = grid.Training(f"{run}: {label}, seed {seed}", [[
                    "train.py", "--data", data, "--out", out, "--seed", seed, "--no-test",
                    *CANDIDATES[run][label]]], out)
                where[out] = (run, label, seed)
                if not record_selection(tried, training, where, same, icons):
                    todo.append(training)
    execute(todo, args, on_done=lambda t: record_selection(tried, t, where, same, icons))
    for run in runs:
        label = choose(tried[run])
        print(f"{run}: {label} (validation {tried[run][label]['val_mean']:.1f}%)")


def record_selection(tried, training, where, same, icons):
    """Add a finished candidate training's validation figures to selection.json -> whether
    its folder held one (of this code, these arguments and the icons of fingerprint icons)."""
    run, label, seed = where[training.out]
    args = CANDIDATES[run][label]
    path = training.out / "manifest.json"
    entry = read_manifest(path).get("runs", {}).get(run, {}) if path.exists() else {}
    if (entry.get("environment", {}).get("training_code") not in same
            or entry.get("dataset", {}).get("fingerprint") != icons
            or entry.get("command", [])[-len(args):] != args):
        return False
    curve = [e["val_accuracy"] for e in rows(entry["per_epoch"])]
    slot = tried.setdefault(run, {}).setdefault(label, {"args": args, "seeds": {}})
    if slot["args"] != args:
        slot.update(args=args, seeds={})
    slot["seeds"][str(seed)] = {
        "val_accuracy": entry["val_accuracy"],
        "best_val_accuracy": max(curve), "best_epoch": curve.index(max(curve)) + 1,
        "training_seconds": entry["training_seconds"],
        "cpu": entry["environment"]["cpu"],
        "blas_kernel": entry["environment"]["blas"]["kernel"],
        "git_commit": entry["environment"]["git_commit"],
        "training_code": entry["environment"]["training_code"], "dataset": icons}
    write_selection(tried)
    return True


def read_selection():
    """results/selection.json, with its means, spreads and choices as this code computes them
    (checked: a file a crash or a hand left unreadable stops us in one line)."""
    tried = read_manifest(SELECTION)
    try:
        summarise_selection(tried)
    except (TypeError, KeyError, AttributeError, ValueError, statistics.StatisticsError):
        raise LabError(f"{SELECTION}: not as sweep.py --select writes it (a candidate's seeds "
                       f"or accuracies are missing or not numbers); fix it from git (`git "
                       f"checkout {SELECTION.relative_to(LAB)}`)") from None
    return tried


def selection_writer(tried):
    summarise_selection(tried)
    return lambda f: f.write(json.dumps(tried, indent=2).encode())


def write_selection(tried):
    atomic_write(SELECTION, selection_writer(tried))


def summarise_selection(tried):
    """Each candidate's validation mean and spread, in %, and which one each run chooses."""
    for candidates in tried.values():
        for c in candidates.values():
            c["val"] = [100 * s["val_accuracy"] for s in c["seeds"].values()]
            c["val_mean"] = round(statistics.mean(c["val"]), 2)
            c["val_spread"] = round(spread(c["val"]), 2)
        complete = {k: c for k, c in candidates.items() if len(c["seeds"]) == SELECT_SEEDS}
        for label, c in candidates.items():
            c["chosen"] = bool(complete) and label == choose(complete)


# --- the final runs: train + validation, the test icons scored once ------------------------------


def done_by_this_code(out, run, want, same, icons, scored=("eval", "eval_all")):
    """Whether `out` holds a finished run of this code (or of code `same` holds as giving the
    same weights: files.same_code), trained as the recipe `want` says ({epochs, lr, ...}: what
    its manifest records) on the icons of fingerprint icons["train"], and scored as `scored`
    asks (--all on the icons of fingerprint icons["fresh"]). A run of other icons is refused:
    this grid would replace it with another."""
    path = out / "manifest.json"
    if not path.exists():
        return False
    entry = manifest_runs(path).get(run)  # (unreadable: one line, before any training)
    if not isinstance(entry, dict):
        return False
    trained, env = entry.get("recipe"), entry.get("environment")
    on = {"train": (entry.get("dataset") or {}).get("fingerprint"),
          "fresh": (entry.get("eval_all") or {"fingerprint": icons["fresh"]}).get("fingerprint")}
    other = [part for part in on if on[part] != icons[part]]
    if other:
        raise LabError(f"{printable(path)}: {'trained' if other[0] == 'train' else 'scored'} on "
                       f"other icons ({str(on[other[0]])[:8]}…) than this grid's "
                       f"({icons[other[0]][:8]}…), which would replace them; if the icons "
                       f"changed on purpose, delete {printable(out)} to train it again")
    return (isinstance(trained, dict) and isinstance(env, dict)
            and env.get("training_code") in same
            and all(trained.get(k) == v for k, v in want.items())
            and all(isinstance(entry.get(key), dict) for key in scored))


def final(run, epochs=None):
    """A final model's train.py arguments and its recipe as its manifest records it: the
    chosen one (with `epochs` instead of its own, if given), on train + validation."""
    want = {**recipe(run), "train_on": "train+val"} | ({"epochs": epochs} if epochs else {})
    args = [*RUNS[run], "--train-on", "train+val"] + (["--epochs", str(epochs)] if epochs else [])
    return args, want


def sweep(seeds, runs, data, args):
    """Each run's final models, seeds `seeds`: trained, scored on the test icons and on the
    fresh icons, into results/<run>/seed-<k>/."""
    same = same_code(LAB)
    fresh, draw = fresh_icons()
    icons = {"train": fingerprint_of(Path(data).resolve()),
             "fresh": fingerprint_of(fresh, 1000, FRESH_SEED)}
    todo = []
    for seed in seeds:
        for run in runs:
            out, (train_args, want) = RESULTS / run / f"seed-{seed}", final(run)
            if not done_by_this_code(out, run, want, same, icons):
                checkpoint = out / "checkpoint.npz"  # (never committed: .gitignore)
                todo.append(grid.Training(f"{run}, seed {seed}", [
                    ["train.py", "--data", data, "--out", out, "--seed", seed, *train_args],
                    ["eval.py", "--data", data, "--checkpoint", checkpoint],
                    ["eval.py", "--data", fresh, "--all", "--checkpoint", checkpoint]], out))
    execute(todo, args, before=[draw])


# --- what more data buys: the 300-class runs on larger datasets ----------------------------------

SCALING_SIZES = (500, 1000, 2000, 4000, 8000)  # generate_icons.py --n
SCALING_RUNS = ("full", "full_factorised")
SCALING = RESULTS / "scaling"
SCALING_SEEDS = 2


STEPS_OF = 1000  # the lab's dataset size, on which the recipes' epochs were chosen


def same_steps(run, n):
    """The epochs of a run's recipe for a dataset of n icons, with the number of steps of its
    1000-icon run: epochs × 1000 / n. Holding the steps, not the epochs, keeps each point's
    training cost the same, and the question to what the data adds, not the compute."""
    return max(1, round(recipe(run)["epochs"] * STEPS_OF / n))


def scaling(sizes, seeds, runs, args):
    """Train each run's chosen recipe on datasets of each size (training seed 0's icons, the
    same split fractions, train + validation), and score each model on the same 1000 fresh
    icons (generator seed FRESH_SEED) into results/scaling/<run>/n-<N>/seed-<k>/."""
    same = same_code(LAB)
    fresh, draw = fresh_icons()
    fresh_icons_are = fingerprint_of(fresh, 1000, FRESH_SEED)
    todo, sizes_needed = [], set()
    for n in sizes:
        data = DATA_CACHE / f"n-{n}"
        icons = {"train": fingerprint_of(data, n, 0), "fresh": fresh_icons_are}
        for seed in seeds:
            for run in runs:
                out = SCALING / run / f"n-{n}" / f"seed-{seed}"
                train_args, want = final(run, same_steps(run, n))
                if not done_by_this_code(out, run, want, same, icons, ("eval_all",)):
                    sizes_needed.add(n)
                    todo.append(grid.Training(f"{run}, {n} icons, seed {seed}", [
                        ["train.py", "--data", data, "--out", out, "--seed", seed, "--no-test",
                         *train_args],
                        ["eval.py", "--data", fresh, "--all", "--checkpoint",
                         out / "checkpoint.npz"]], out))
    execute(todo, args, before=[draw] + [["generate_icons.py", "--out", DATA_CACHE / f"n-{n}",
                                          "--n", n, "--seed", 0] for n in sorted(sizes_needed)])


COMBOS = "full_factorised_combos"  # in the grid only when --runs asks for it
HELD_OUT_FORMS = 60  # of the 300, by the combos split: every icon of them is a test icon


def per_verb_form(entry):
    """Training icons per verb form the run trains on: all 300, or the 240 the unseen-
    combinations split lets it see."""
    return entry["split_sizes"]["train"] / (300 - HELD_OUT_FORMS * (entry["split"] == "combos"))


def scaling_points(expected=()):
    """What results/scaling/ holds, by dataset size N: {run: {N: [fresh % per seed]}}, the
    same for training seconds, {run: {N: training icons per verb form}} and {N: epochs ×
    training icons} (of the runs that see every form). For the unseen combinations, fresh % is
    on the fresh icons of the forms it never saw. A manifest of `expected` that is missing is
    named as left out."""
    points, seconds, per_form, shown = {}, {}, {}, {}
    for path in sorted(set(expected) | set(SCALING.glob("*/n-*/seed-*/manifest.json"))):
        run, n = path.parents[2].name, path.parents[1].name.removeprefix("n-")
        entry = checked_entry(path, run, SCALING_FIELDS)
        if entry is None or not n.isdigit():
            continue
        n = int(n)
        points.setdefault(run, {}).setdefault(n, []).append(100 * fresh_accuracy(entry))
        seconds.setdefault(run, {}).setdefault(n, []).append(entry["training_seconds"])
        per_form.setdefault(run, {})[n] = per_verb_form(entry)
        if run != COMBOS:
            shown[n] = entry["split_sizes"]["train"] * entry["recipe"]["epochs"]
    if not shown:
        raise LabError(f"{SCALING}: no results of {' or '.join(SCALING_RUNS)} yet; run "
                       f"`sweep.py --scaling` first")
    return points, seconds, per_form, shown


def seeds_per_point(points):
    return max(len(each) for by_n in points.values() for each in by_n.values())


def scaling_plot(points, per_form):
    """results/scaling.png: accuracy against icons per verb form, and the same as misses."""
    seeds = seeds_per_point(points)
    ticks = {x: n for run in points if run != COMBOS for n, x in per_form[run].items()}
    plt = pyplot()
    fig, (acc, miss) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    fig.suptitle("What more data buys: 300 verb forms, about the same number of steps at "
                 f"every size (lines: the mean of {seeds} seeds; shaded: their range)")
    for run, by_n in points.items():
        ns = sorted(by_n)
        xs = [per_form[run][n] for n in ns]
        label = f"{run}: held-out forms (x: per seen form)" if run == COMBOS else run
        for ax, y in ((acc, lambda a: a), (miss, lambda a: 10 * (100 - a))):  # % -> of 1000
            ax.plot(xs, [statistics.mean(map(y, by_n[n])) for n in ns], "o-", label=label)
            ax.fill_between(xs, [min(map(y, by_n[n])) for n in ns],
                            [max(map(y, by_n[n])) for n in ns], alpha=0.2)
    for ax, levels in ((acc, {95: 95, 99: 99}), (miss, {95: 50, 99: 10})):
        for level, y in levels.items():
            ax.axhline(y, color="gray", ls=":", lw=1)
            ax.annotate(f"{level}%", (1, y), xycoords=("axes fraction", "data"),
                        xytext=(-4, -2), textcoords="offset points", ha="right", va="top",
                        color="gray")
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), [f"{x:.1f}\n({n})" for x, n in ticks.items()])
        ax.minorticks_off()
        ax.set_xlabel("training icons per verb form (log scale); in brackets, "
                      "generate_icons.py --n")
        ax.grid(alpha=0.3)
    acc.set(ylabel="accuracy on the fresh icons (%)", title="accuracy")
    acc.legend(loc="lower right")
    miss.set_yscale("symlog", linthresh=1)  # linear from 0 to 1, so a seed with no miss shows
    miss.set_yticks([0, 1, 10, 100, 1000], ["0", "1", "10", "100", "1000"])
    miss.set(ylim=(0, 1000), ylabel="fresh icons missed, per 1000 (log scale)",
             title="the same, as misses: the last percent magnified")
    return fig


def need(by_x, level):
    """(lo, hi]: the icons per verb form a run needs for `level`, as the grid can tell. hi is
    the fewest measured whose seed mean reaches it (inf if none does), lo the size below (0 if
    hi is the smallest measured)."""
    xs = sorted(by_x)
    hi = next((x for x in xs if statistics.mean(by_x[x]) >= level), math.inf)
    below = [x for x in xs if x < hi]
    return (below[-1] if below else 0.0), hi


def fewer(needs):
    """How many times fewer icons the head that needs fewer needs, bounded from both heads'
    (lo, hi] intervals, in words."""
    (few, (few_lo, few_hi)), (_, (many_lo, many_hi)) = sorted(needs.items(),
                                                              key=lambda item: item[1][1])
    if few_hi == math.inf or many_lo < few_hi:
        return "this grid cannot tell which needs fewer"
    low = math.floor(many_lo / few_hi + 1e-9)  # rounded so as never to overstate a bound
    high = (math.inf if many_hi == math.inf or few_lo == 0 else
            math.ceil(many_hi / few_lo - 1e-9))
    if high == math.inf:
        return (f"{few} needs more than {low}× fewer" if low >= 2 else
                f"{few} needs fewer (how many times, this grid cannot tell)")
    return (f"{few} needs {low}× to {high}× fewer" if low >= 2 else
            f"{few} needs fewer, at most {high}× fewer")


def scaling_text(points, seconds, per_form, shown):
    """The README's paragraph: the points as a table, then the issue's questions answered."""
    seeds = seeds_per_point(points)
    heads = [run for run in points if run != COMBOS]  # the runs that see every verb form
    ns = sorted(shown)

    def cell(values):  # mean (min–max) over the seeds, and how many when fewer than the rest
        return mean_range(values) + (f", {len(values)} seed" * (len(values) < seeds))

    runs = [*heads, *[COMBOS] * (COMBOS in points)]
    rows = ["| icons (`--n`) | training icons per verb form | epochs × training icons | " +
            " | ".join(f"{run}: fresh %" + " of held-out forms" * (run == COMBOS)
                       for run in runs) + " | training s (median) |",
            "|---|---|---|" + "---|" * len(runs) + "---|"]
    for n in ns:
        x = next(per_form[run][n] for run in heads if n in per_form[run])  # the same in each
        rows.append(f"| {n} | {x:.1f} | {shown[n]:,} | " + " | ".join(
            cell(points[run][n]) if n in points[run] else "—" for run in runs) +
            f" | {statistics.median(s for run in runs for s in seconds[run].get(n, [])):.0f} |")

    def where(lo, hi):
        if hi == math.inf:
            return f"more than {lo:.1f}"
        return f"{hi:.1f} or fewer" if lo == 0 else f"{lo:.1f}–{hi:.1f}"

    answers = []
    for level in (95, 99):
        needs = {run: need({per_form[run][n]: a for n, a in points[run].items()}, level)
                 for run in heads}
        said = "; ".join(f"{run} {where(*needs[run])}" for run in heads)
        answers.append(f"- **{level}%** (seed mean on the fresh icons) needs {said} training "
                       f"icons per verb form" + (f": {fewer(needs)}." if len(heads) == 2 else "."))
    if COMBOS in points:
        answers.append(f"- **Unseen forms.** {COMBOS}, trained on the {300 - HELD_OUT_FORMS} "
                       f"forms it sees, on the fresh icons of the {HELD_OUT_FORMS} it never saw: "
                       + ", ".join(f"{per_form[COMBOS][n]:.1f} icons per seen form → "
                                   f"{statistics.mean(points[COMBOS][n]):.1f}%"
                                   for n in sorted(points[COMBOS])) + ".")
    all_seconds = [s for by_n in seconds.values() for each in by_n.values() for s in each]
    typical = statistics.median(all_seconds)
    answers.append(
        f"- **Cost.** Every point trains for about the same number of steps (epochs × "
        f"{STEPS_OF} / N; the test part is capped at one icon per verb form, so a larger set "
        f"trains on a larger share of its icons: "
        f"{max(shown.values()) / min(shown.values()) - 1:.0%} more icons shown at most), so "
        f"each costs about "
        f"{typical:.0f} s on the machine that ran it (median of the {len(all_seconds)} "
        f"trainings, {min(all_seconds):.0f}–{max(all_seconds):.0f} s), whatever its size. An "
        f"epoch's cost grows with the icons: holding the recipe's epochs (chosen on "
        f"{STEPS_OF} icons) instead would make a run on "
        f"{ns[-1]} icons cost {ns[-1] / STEPS_OF:.0f}× the {STEPS_OF}-icon run, "
        f"about {typical * ns[-1] / STEPS_OF / 60:.0f} min.")
    intro = ("The 300-class runs' chosen recipes trained on datasets of more icons (`sweep.py "
             "--scaling`: training seed 0's generator, the same split fractions, train + "
             "validation), about the same number of steps at every size, each model scored on "
             f"the same 1000 fresh icons (generator seed 1); {seeds} seeds a point, their mean "
             "(min–max):")
    reading = ("Where a head's seed mean crosses a level, \"a–b\" means below it at a training "
               "icons per verb form and at or above it at b, the next size measured:")
    return ("### What more data buys\n\n" + textwrap.fill(intro, 100) + "\n\n"
            "![scaling](../results/scaling.png)\n\n" + "\n".join(rows) + "\n\n" +
            textwrap.fill(reading, 100) + "\n\n" +
            "\n".join(textwrap.fill(a, 100, subsequent_indent="  ") for a in answers))


def scaling_summary(expected=()):
    """The README's scaling paragraph and results/scaling.png (a figure), from
    results/scaling/ (naming the manifests of `expected` that are missing) -> (text, figure)."""
    points, seconds, per_form, shown = scaling_points(expected)
    return scaling_text(points, seconds, per_form, shown), scaling_plot(points, per_form)


NUMBER = (int, float)
SCALING_FIELDS = {"training_seconds": NUMBER, "split": str, "split_sizes.train": int,
                  "recipe.epochs": int, "recipe.seed": int, "environment.training_code": str,
                  "eval_all.accuracy": NUMBER, "eval_all.parts.test.accuracy": NUMBER}
FINAL_FIELDS = {**SCALING_FIELDS, "test_accuracy": NUMBER, "split_sizes.test": int, "n_classes": int,
                "eval.mistakes": list}


def checked_entry(path, run, fields, say=print, icons=None):
    """The entry of `run` in the results manifest `path`, with every field the summaries read
    (`fields`: dotted name -> type) there and of its type, trained on the icons of fingerprint
    `icons` (if given); else None, and one line said on why it is left out (missing,
    unreadable, trained but not scored, a field of the wrong type, other icons)."""
    if not (path.exists() or path.is_symlink()):
        say(f"left out: {path}: missing (not trained yet, or deleted)")
        return None
    try:
        runs = read_manifest(path).get("runs")
    except LabError as e:
        say(f"left out: {e}")
        return None
    entry = runs.get(run) if isinstance(runs, dict) else None
    if not isinstance(entry, dict):
        say(f"left out: {path}: no entry for run {run}")
        return None
    for dotted, kind in fields.items():
        value = entry
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        top = dotted.split(".")[0]
        if value is None and top in ("eval", "eval_all") and top not in entry:
            say(f"left out: {path}: trained but not scored ({top} missing); run the sweep "
                f"again to score it")
            return None
        if not isinstance(value, kind) or isinstance(value, bool):
            say(f"left out: {path}: {dotted} is {printable(repr(value))[:40]}, not a "
                f"{'number' if kind is NUMBER else kind.__name__}; retrain that seed (delete "
                f"its folder) or restore the file from git")
            return None
    trained_on = entry["dataset"].get("fingerprint") if isinstance(entry.get("dataset"),
                                                                  dict) else None
    if icons is not None and trained_on != icons:
        say(f"left out: {path}: trained on other icons ({str(trained_on)[:8]}…) than --data's "
            f"({icons[:8]}…)")
        return None
    return entry


def collect(seeds=range(5), icons=None):
    """{run: [manifest entry of each seed]}, from results/<run>/seed-*/manifest.json (`seeds`
    at least); a seed whose manifest is missing or cannot be read as the summary needs it, or
    that was trained on other icons than those of fingerprint `icons`, is named and left
    out."""
    found = {}
    for run in RUNS:
        expected = {RESULTS / run / f"seed-{k}" / "manifest.json" for k in seeds}
        for path in sorted(expected | set((RESULTS / run).glob("seed-*/manifest.json"))):
            entry = checked_entry(path, run, FINAL_FIELDS, icons=icons)
            if entry is not None:
                found.setdefault(run, []).append(entry)
    return found


def other_code(found):
    """{run: [seeds trained by training code that is neither this nor checked the same]}."""
    same = same_code(LAB)
    return {run: sorted(e["recipe"]["seed"] for e in entries
                        if e["environment"]["training_code"] not in same)
            for run, entries in found.items()}


def fresh_accuracy(entry):
    """Accuracy on the fresh icons: all 1000, or, for unseen combinations, those of the
    combinations held out of training (the fresh folder's own combos test part)."""
    fresh = entry.get("eval_all")
    if fresh is None:
        return None
    return fresh["parts"]["test"]["accuracy"] if entry["split"] == "combos" else fresh["accuracy"]


def mean_range(values):
    """'mean (min–max)' of percentages; one value alone."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def table(found, tried):
    header = ("| run | recipe (chosen on validation) | validation %, 3 seeds | seeds | "
              "train/test icons | test % | fresh icons % | training s |")
    rows = [header, "|---|---|---|---|---|---|---|---|"]
    others = other_code(found)
    for run, entries in found.items():
        sizes = entries[0]["split_sizes"]
        label = CHOSEN[run]
        fresh = [100 * a for a in map(fresh_accuracy, entries) if a is not None]
        rows.append(
            f"| {run}{' †' * bool(others[run])} | {label} | "
            f"{mean_range(tried[run][label]['val']) if label in tried.get(run, {}) else '—'} | "
            f"{len(entries)} | "
            f"{sizes['train']}/{sizes['test']} | "
            f"{mean_range([100 * e['test_accuracy'] for e in entries])} | "
            f"{mean_range(fresh) if fresh else '—'} | "
            f"{statistics.median(e['training_seconds'] for e in entries):.0f} |")
    mixed = [f"{run} (seed {', '.join(map(str, seeds))})" for run, seeds in others.items()
             if seeds]
    if mixed:  # said, never silent: these seeds' numbers may not be this code's
        rows.append(f"\n† trained by other training code than this, not checked the same "
                    f"(`sweep.py --same-as`): {'; '.join(mixed)}")
    return "\n".join(rows)


def spec_table(found):
    """The README's table: each run's final models against the spec's acceptance."""
    rows = [("| run (classes) | recipe | training s | test %, mean (min–max) of the seeds | "
            "fresh icons % | the spec asks | |"), "|---|---|---|---|---|---|---|"]
    for run, entries in found.items():
        test = [100 * e["test_accuracy"] for e in entries]
        fresh = [100 * a for a in map(fresh_accuracy, entries) if a is not None]
        seconds = statistics.median(e["training_seconds"] for e in entries)
        least, asked = ACCEPTANCE[run]
        met = "" if least is None else (
            f"met by all {len(test)} seeds" if min(test) >= least and seconds <= 300 else
            f"{sum(t >= least for t in test)} of {len(test)} seeds")
        rows.append(f"| {run} ({entries[0]['n_classes']}) | "
                    f"{'spec' if recipe(run) == recipe(run, 'spec') else 'chosen'} | "
                    f"{seconds:.0f} | {mean_range(test)} | "
                    f"{statistics.mean(fresh):.1f} | {asked} | {met} |")
    return "\n".join(rows)


def selection_table(tried):
    """Every candidate of every run: validation accuracy seed by seed, mean and spread; a
    candidate whose lever lost and left the code is marked so."""
    header = ("| run | candidate | validation % by seed | mean | spread | best epoch | "
              "training s | chosen |")
    rows = [header, "|---|---|---|---|---|---|---|---|"]
    for run, candidates in tried.items():
        for label, c in candidates.items():
            seeds = c["seeds"].values()
            gone = "" if label in CANDIDATES[run] else " (lost; no longer in the code)"
            rows.append(
                f"| {run} | {label}{gone} | {', '.join(f'{v:.0f}' for v in c['val'])} | "
                f"{c['val_mean']:.1f} | {c['val_spread']:.0f} | "
                f"{statistics.median(s['best_epoch'] for s in seeds):.0f} | "
                f"{statistics.median(s['training_seconds'] for s in seeds):.0f} | "
                f"{'✓' if c['chosen'] else ''} |")
    return "\n".join(rows)


def goals(found):
    """One sentence a goal: met or missed, and by how much."""
    lines = []
    for run, goal in GOALS.items():
        if run not in found:
            lines.append(f"{run}: not run yet (goal ≥ {goal}%).")
            continue
        test = [100 * e["test_accuracy"] for e in found[run]]
        fresh = [100 * a for a in map(fresh_accuracy, found[run]) if a is not None]
        mean = statistics.mean(test)
        verdict = "met" if mean >= goal else f"missed by {goal - mean:.1f}"
        extra = []
        if fresh:
            gap = statistics.mean(fresh) - mean
            extra.append(f"fresh {statistics.mean(fresh):.1f}% ({gap:+.1f}"
                         f"{'' if abs(gap) <= 1 else ', more than 1 point'})")
        worst = mean - min(test)
        extra.append(f"worst seed {min(test):.1f}% ({worst:.1f} below the mean"
                     f"{'' if worst <= 3 else ', more than 3'})")
        lines.append(f"- {run}: goal ≥ {goal}% → {mean:.1f}%, {verdict}; {'; '.join(extra)}.")
        missed = {e["recipe"]["seed"]: e["eval"]["mistakes"] for e in found[run]}
        if max(map(len, missed.values())) <= 3:  # few enough to name them, seed by seed
            lines[-1] += " Test icons missed: " + "; ".join(
                f"seed {k}: {', '.join(f'`{m}`' for m in names) or 'none'}"
                for k, names in missed.items()) + "."
    return "\n".join(lines)


def plot(found):
    """results/seeds.png: each run's seeds, test and fresh icons."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    for i, (run, entries) in enumerate(found.items()):
        test = [100 * e["test_accuracy"] for e in entries]
        fresh = [100 * a for a in map(fresh_accuracy, entries) if a is not None]
        ax.plot([i - 0.1] * len(test), test, "o", color="tab:blue", alpha=0.7,
                label="test icons (one dot per seed)" if i == 0 else None)
        ax.plot([i + 0.1] * len(fresh), fresh, "s", color="tab:orange", alpha=0.7,
                label=f"fresh icons (generator seed {FRESH_SEED}; for unseen combinations, "
                "those of the held-out ones)" if i == 0 else None)
        if run in GOALS:
            ax.plot([i - 0.3, i + 0.3], [GOALS[run]] * 2, color="gray", lw=1,
                    label="goal (mean of the seeds)" if i == 0 else None)
    ax.set_xticks(range(len(found)), list(found), rotation=15)
    ax.set(ylabel="accuracy (%)", title="Final models (trained on train + validation), "
           "accuracy over training seeds")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)  # off the dots
    return fig


def summarise(seeds, icons):
    """The results table, the selection table and results/seeds.png, from every manifest (of
    seeds `seeds` at least, trained on the icons of fingerprint `icons`) read and checked
    first; then all written at one point."""
    found = collect(seeds, icons)
    if not found:
        raise LabError(f"{RESULTS}: no readable results/<run>/seed-*/manifest.json; run the "
                       f"sweep first")
    tried = read_selection()
    texts = {"spec": spec_table(found),
             "results": table(found, tried) + "\n\nOur own targets (not the spec's: its "
             "acceptance is in the README), on the means of the seeds' test accuracy:\n\n" +
             goals(found), "selection": selection_table(tried)}
    commit({SELECTION: selection_writer(tried),  # the choices as this code's rule makes them
            RESULTS / "seeds.png": figure_writer(plot(found))}, texts)


def commit(files, texts):
    """Write `files` ({path: write(f)}) and each {marker key: text} between its markers (in
    README.md or docs/report.md), all at one point: a failure before it changes none."""
    docs = {}
    for key, text in texts.items() if RESULTS == LAB / "results" else ():  # (else: printed)
        name, begin, finish = MARKERS[key]
        doc = docs.get(name) or (LAB / name).read_text()
        start, end = doc.find(begin), doc.find(finish)
        if start < 0 or end < start:
            raise LabError(f"{LAB / name}: the {key}-table markers are missing")
        docs[name] = doc[:start + len(begin)] + "\n" + text + "\n" + doc[end:]
    with Outputs(LAB) as outputs:
        for path, write in files.items():
            outputs.file(path, write)
        for name, doc in docs.items():
            outputs.file(LAB / name, lambda f, doc=doc: f.write(doc.encode()))
    for text in texts.values():
        print(text)


def redraw_all(folders):
    """sweep.py --plots: each folder's training plots from its manifest (train.redraw)."""
    from train import redraw

    folders = [Path(f) for f in folders] or sorted(
        p.parent for p in RESULTS.rglob("seed-*/manifest.json"))
    for folder in folders:
        if committed(folder, LAB) == "the lab's top level":
            raise LabError(f"{printable(folder)}: the lab's top level, whose committed loss.png, "
                           f"accuracy.png and diagnostics.png train.py draws step by step (a "
                           f"manifest keeps epochs only); point --plots to a folder of your own "
                           f"holding a copy of its manifest.json")
        if not (folder / "manifest.json").is_file():
            raise LabError(f"{printable(folder)}: no manifest.json there; point to a folder "
                           f"train.py wrote")
        redraw(folder)
    print(f"drew loss.png, accuracy.png and diagnostics.png again in {len(folders)} folders")


# --- the same weights from changed code: a recorded check ---------------------------------------

# short runs that take every path the final models take (heads, splits, shift, LR, train+val),
# typed in full so that both commits train the same recipe whatever their defaults
SAME_CODE_RUNS = {
    "tense": ["--task", "tense", "--epochs", "2", "--lr", "0.001"],
    "tense_person": ["--task", "tense_person", "--epochs", "2", "--lr", "0.05", "--shift", "2"],
    "full": ["--task", "full", "--epochs", "2", "--lr", "0.05", "--shift", "2",
             "--train-on", "train+val"],
    "full_factorised": ["--task", "full", "--head", "factorised", "--epochs", "2", "--lr",
                        "0.05", "--shift", "2"],
    "full_factorised_combos": ["--task", "full", "--head", "factorised", "--split", "combos",
                               "--epochs", "2", "--lr", "0.05", "--shift", "2"],
}


def check_same_code(rev, data):
    """Train SAME_CODE_RUNS with the training code of commit `rev` and with this code; if every
    parameter array of every run is equal, record in results/same_code.json that this code's
    runs are those of rev's (so results made at rev need no rerun)."""
    import numpy as np

    def git(*args):
        return subprocess.run(["git", *args], cwd=LAB, capture_output=True, check=False)

    changed = git("status", "--porcelain", "--", "*.py").stdout.decode().strip()
    if changed:
        raise LabError(f"uncommitted changes to the code ({changed.splitlines()[0].strip()}, "
                       f"...); commit them first: a check records committed code only")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = git("archive", rev)
        if archive.returncode:
            raise LabError(f"{rev}: not a commit of this repository; name one `git log` "
                           f"shows")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(old, filter="data")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(old / "src"), str(old)])}
        compared, codes = 0, set()
        for run, args in SAME_CODE_RUNS.items():
            outs = [Path(tmp) / f"{run}-{side}" for side in ("old", "new")]
            for lab, out in zip((old, LAB), outs):
                done = subprocess.run([sys.executable, lab / "train.py", "--data", data, "--out",
                                       out, *args], cwd=lab, env=env if lab == old else None,
                                      capture_output=True, text=True, check=False)
                if done.returncode:
                    raise LabError(f"{run} at {'commit ' + rev if lab == old else 'HEAD'} "
                                   f"failed: {done.stderr.strip().splitlines()[-1]}")
            with np.load(outs[0] / "checkpoint.npz") as a, np.load(outs[1] / "checkpoint.npz") as b:
                names = [k for k in a.files if k not in ("config", "meta")]
                differ = [k for k in names if not np.array_equal(a[k], b[k])]
                if differ or sorted(names) != sorted(k for k in b.files if k not in
                                                     ("config", "meta")):
                    raise LabError(f"{run}: the weights differ from commit {rev}'s "
                                   f"({', '.join(differ[:3]) or 'other tensors'}); rerun the "
                                   f"results this code changes")
                compared += len(names)
            codes.add(read_manifest(outs[0] / "manifest.json")["runs"][run]["environment"]
                      ["training_code"])
    (old_code,) = codes
    commit = git("rev-parse", rev).stdout.decode().strip()
    path = RESULTS / "same_code.json"
    known = read_manifest(path)
    known[training_code(LAB)] = {
        "same_weights_as": old_code, "commit": commit,
        "checked": f"{len(SAME_CODE_RUNS)} runs of 2 epochs ({', '.join(SAME_CODE_RUNS)}), "
                   f"{compared} parameter arrays, each equal bit for bit"}
    atomic_write(path, lambda f: f.write((json.dumps(known, indent=2) + "\n").encode()))
    print(f"the same weights as commit {commit[:7]} ({old_code}) in {compared} arrays: "
          f"recorded in {path.relative_to(LAB)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Choose each run's recipe on validation icons "
                                 "(--select), train and score the final models over several "
                                 "seeds, then write the README's results table.")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: 5)")
    ap.add_argument("--runs", nargs="+", choices=list(RUNS),
                    help=f"which runs (default: all; with --scaling: {' '.join(SCALING_RUNS)}, "
                    f"and {COMBOS} may be added)")
    ap.add_argument("--data", default=str(DATA), help="folder made by generate_icons.py "
                    "(default: the lab's data/; the results of other icons go to "
                    "runs/results-<folder>-<fingerprint>/)")
    ap.add_argument("--summary", action="store_true", help="only rebuild the table and plot")
    ap.add_argument("--select", action="store_true", help=f"train the candidate recipes "
                    f"(seeds 0..{SELECT_SEEDS - 1}) and write their validation accuracy to "
                    f"results/selection.json")
    ap.add_argument("--scaling", nargs="*", type=int, metavar="N",
                    help=f"train the 300-class runs on datasets of N icons (default: "
                    f"{' '.join(map(str, SCALING_SIZES))}), {SCALING_SEEDS} seeds each, scored "
                    f"on 1000 fresh icons; then results/scaling.png and the README paragraph")
    ap.add_argument("--same-as", metavar="REV", help="check that this code trains the same "
                    "weights as commit REV did (short runs at both, every array compared) and, "
                    "if so, record it: results made at REV then count as this code's")
    ap.add_argument("--jobs", type=int, default=grid.default_jobs(),
                    help=f"trainings at once, each on its share of the cores (default here: "
                    f"{grid.default_jobs()}, two cores a training)")
    ap.add_argument("--plan", action="store_true", help="print the trainings still to do as "
                    "commands, one a line, for any scheduler (then run the summary)")
    ap.add_argument("--plots", nargs="*", metavar="FOLDER", help="draw the training plots "
                    "(loss, accuracy, diagnostics) of results folders again from their "
                    "manifests (default: every seed under results/; they are not committed)")
    args = ap.parse_args(argv)
    args.data = Path(args.data).resolve()
    if args.plots is not None:
        return redraw_all(args.plots)
    if args.same_as:
        return check_same_code(args.same_as, args.data)
    if not 1 <= args.seeds <= 100:
        ap.error(f"--seeds must be between 1 and 100, got {args.seeds}")
    if not 1 <= args.jobs <= 256:
        ap.error(f"--jobs must be between 1 and 256, got {args.jobs}")
    if args.scaling is not None:
        sizes, runs = args.scaling or SCALING_SIZES, args.runs or SCALING_RUNS
        if not all(300 <= n <= 8000 for n in sizes):
            ap.error(f"--scaling sizes must be between 300 and 8000 icons, got {sizes}")
        if not set(runs) <= {*SCALING_RUNS, COMBOS}:
            ap.error(f"--scaling trains the 300-class runs ({', '.join([*SCALING_RUNS, COMBOS])}), "
                     f"not {', '.join(sorted(set(runs) - {*SCALING_RUNS, COMBOS}))}")
        seeds = range(min(args.seeds, SCALING_SEEDS))
        scaling(sizes, seeds, runs, args)
        if not args.plan:
            text, fig = scaling_summary([SCALING / run / f"n-{n}" / f"seed-{k}" / "manifest.json"
                                         for run in runs for n in sizes for k in seeds])
            commit({RESULTS / "scaling.png": figure_writer(fig)}, {"scaling": text})
        return None
    runs = args.runs or list(RUNS)
    root, icons = results_for(args.data)
    move_results(root)
    if args.select:
        return select(args.data, runs, args)
    if not args.summary:
        sweep(range(args.seeds), runs, args.data, args)
    if not args.plan:
        summarise(range(args.seeds), icons)


if __name__ == "__main__":
    run_cli(main)
