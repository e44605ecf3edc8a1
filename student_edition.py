"""Make the student edition of this lab, for a course to hand out.

    uv run python student_edition.py --out ../lab-00-student
    uv run python student_edition.py --out ../lab-00-student --solved BE   # Blocks B, E given

The parts the spec asks a student to write are marked in the solution itself, each between
`# BEGIN BLOCK X: hint` and `# END BLOCK X`: B the icons, C the ViT, D the training step, E the
confusion matrix. The edition is this lab with each marked part replaced by
`raise NotImplementedError("Block X: hint")`, a BLUEPRINT.md of the spec's headings to fill in,
STUDENT.md, and as tests the grader (tests/grader/, `pytest -m block_c` grades Block C) and the
given Phase 17 block's own tests. None of the solution's results, sweeps, lessons, PyTorch
comparison, engineering docs or committed icons go into it.

It writes into a new or empty folder, or into one holding an edition it made (its record,
.student_edition.json, lists the files it wrote with their hashes): there it updates only its own
files, unchanged since; it never touches anything else, and stops at a student's changed Block
unless told --replace. The lab itself, a folder inside it or around it is refused.
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python student_edition.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from minimodel.files import LabError, atomic_write, from_here, printable, run_cli
from vit import ViTConfig, n_parameters

LAB = Path(__file__).resolve().parent
BLOCKS = "BCDE"
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN BLOCK (?P<block>[A-Z]): (?P<hint>.+)$")
END = "# END BLOCK {}"

# what the edition leaves out (git's paths, as prefixes; and the top level's figures): results
# and the tools that made them
LEFT_OUT = ("results/", "docs/", ".ci/", "data/", "sweep.py", "lessons.py", "compare_torch.py",
            "student_edition.py", "manifest.json", "README.md", "BLUEPRINT.md",
            "src/minimodel/grid.py", "tests/")
TESTS_KEPT = ("tests/grader/", "tests/gradcheck.py", "tests/test_block.py", "tests/test_layers.py")


def stub(text, solved="", where="?"):
    """`text` with every marked part of a Block not in `solved` replaced by its stub."""
    out, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        begin = BEGIN.match(lines[i].rstrip("\n"))
        if not begin:
            out.append(lines[i])
            i += 1
            continue
        block, hint, indent = begin["block"], begin["hint"], begin["indent"]
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip() == END.format(block)), None)
        if end is None:
            raise LabError(f"{where}: line {i + 1} begins Block {block} and nothing ends it")
        if block in solved:  # given: the solution, without its markers
            out.extend(lines[i + 1:end])
        else:
            out.append(f"{indent}raise NotImplementedError({f'Block {block}: {hint}'!r})\n")
        i = end + 1
    return "".join(out)


def lines_per_block():
    """'B 61, C 75, ...; 250 in all': the code lines of the solution's marked parts (without
    blank and comment lines), per Block: what a student writes."""
    count = dict.fromkeys(BLOCKS, 0)
    for path in files():
        if path.endswith(".py"):
            for m in re.finditer(r"# BEGIN BLOCK (\w): .*\n((?:.*\n)*?)\s*# END BLOCK \1",
                                 (LAB / path).read_text()):
                count[m[1]] += sum(1 for line in m[2].splitlines()
                                   if line.strip() and not line.strip().startswith("#"))
    return ", ".join(f"{b} {n}" for b, n in count.items()) + f"; {sum(count.values())} in all"


def files():
    """The lab's files as git tracks them, less what the edition leaves out."""
    listed = subprocess.run(["git", "ls-files"], cwd=LAB, capture_output=True, text=True,
                            check=False)
    if listed.returncode:
        raise LabError(f"{LAB}: not a git checkout; make the edition from a clone of the lab")
    return [p for p in listed.stdout.splitlines()
            if p.startswith(TESTS_KEPT) or not (p.startswith(LEFT_OUT) or
                                                 ("/" not in p and p.endswith(".png")))]


BLUEPRINT = """# BLUEPRINT: Lab 00, a tiny ViT on grammar icons

Your design, before any code (the spec's Block A). Fill in every heading; show it to your
instructor before you start Block B.

## Patchify

The shapes from a (B, 32, 32, 3) image to (B, 64, 48) patches, and the order of the patches
and of the values inside one.

## ViT-tiny config and the computational graph

Every step from image to logits with its tensor shape.

## Trainable parameters

Each parameter, its shape and size; the total, checked against ~150k.

## Data and splits

## Training loop sketch

Optimiser, learning rate and schedule, batch size, epochs.

## Test plan

At least five unit tests for vit.py (patchify shape, [CLS] prepending, position embedding shape,
full forward shape, gradient sanity).

## Alternatives considered, and why you rejected them
"""

STUDENT = """# Lab 00, the student edition: a tiny ViT on grammar icons

You build a Vision Transformer in NumPy, its backward pass by hand, on top of the course's
Phase 17 transformer block (given: `src/minimodel/transformer/`), make its dataset, train it and
evaluate it: the spec's Blocks B to E, whole. Write BLUEPRINT.md first (Block A).

```bash
uv run python generate_icons.py && uv run python train.py && uv run python eval.py
uv run pytest
```

The first line is the lab's main job: it stops, in one line, at the first part you have not
written. The second runs every test; a Block's tests fail with NotImplementedError until you
write it. Grade one Block with `uv run pytest -m block_b` (c, d, e); the spec's acceptance with
`uv run pytest -m acceptance` once all are written.

## What you write, bullet by bullet of the spec

Each part is marked `raise NotImplementedError("Block X: ...")` with a one-line hint; its
docstring says what it takes and returns. The graders test what the spec asks, through what
your code does, never how it is written: any correct design passes.

| spec bullet | you write | file | graded by |
|---|---|---|---|
| B: the 20 verbs, 5 tenses, 3 persons | (given: `minimodel.grammar.verbs`) | | |
| B: `render_icon(...)` → (32, 32, 3) uint8 | `shape_mask`, `render_icon` (given: `render_masks`, the jittered shape and pattern; the 20 patterns, as art) | generate_icons.py | block_b |
| B: loop over (verb, tense, person, idx), save `verb_<verb>_tense_<tense>_person_<person>_<idx>.png` | `icon_list`, `render_dataset`, `write_dataset` | generate_icons.py | block_b |
| B: write `labels.json` | `label`, `write_dataset` | generate_icons.py | block_b |
| B: verify, 20 random icons in `data/icons_sample.png` | `sample_grid` (the script prints the count) | generate_icons.py | block_b |
| C: `patchify(x, P)` | `patchify`, `unpatchify` | vit.py | block_c |
| C: `TinyViT`: patches, [CLS], positions, 4 blocks, head | `TinyViT.__init__`'s parameters, `embed`, `encode`, `forward`, `backward`, `encode_backward` | vit.py | block_c |
| C: positions and [CLS] initialised small (std 0.02) | `TinyViT.__init__` | vit.py | block_c |
| D: load icons and labels | (given: `load_dataset`, the format's reader and checks) | | |
| D: split 80/20, stratified by class | `stratified_split` (and its helper `one_per_combination`) | generate_icons.py | block_d |
| D: ≤ 20 epochs, batch 32, SGD with momentum 0.9, LR 1e-3 on a cosine | `train`, `SGD.step`, `cosine_lr`, `cross_entropy` | train.py, vit.py | block_d |
| D: log the loss and the held-out accuracy each epoch | `train` (its line an epoch) | train.py | block_d |
| D: `loss.png`, `accuracy.png` | `plots` | train.py | block_d |
| E: load the final model, test accuracy | `score` (given: `load_checkpoint` reads and checks the file) | eval.py | block_e |
| E: confusion matrix, `confusion_matrix.png` | `confusion`, `draw_confusion` | eval.py | block_e |
| acceptance: ≥ 80% on the tense task in ≤ 5 minutes | all of the above | | acceptance |

The given code calls yours: `train.py` hands your `train` the model wrapped so that each batch
runs as two half-batches on two cores, a diverging run stops in one line and the diagnostics
(diagnostics.png) are recorded; your loop calls its forward and backward as it would the model's.
The given code also reads and checks every file, writes outputs all at once (a crash leaves the
old ones) and keeps the manifest.

The solution's lines per Block (code lines, without blank and comment lines; yours may differ):
{lines}.

## Where this lab departs from the spec, and why

- **~150k parameters in the spec, {params:,} here.** The spec's own config (width 64, 4 blocks,
  MLP 256) holds 196,608 weights in the blocks alone; the lab keeps the config and reports the
  true count (`uv run python vit.py` prints the table).
- **A final LayerNorm** on [CLS] before the head, which the spec's diagram lacks: with
  pre-LayerNorm blocks (ViT, GPT-2) the residual stream is never normalised otherwise.
  `ln_gain` (ones) and `ln_bias` (zeros); the grader checks it.
- **70/10/20, not 80/20.** The spec's 20% test icons stay (200 of 1000); of the spec's 80%
  for training, 100 icons (10% of all) are held out for validation, so recipes are chosen and
  progress is logged on icons that are not the test icons. The test icons are scored once, at the end (the spec logs test accuracy each epoch).
  The split is drawn when the icons are made and stored in `data/splits.json`, so `train.py`
  and `eval.py` read the same one: `stratified_split` lives in generate_icons.py and needs
  writing before the first `generate_icons.py` run.
- **`from minimodel.transformer.block import TransformerBlock`**, where the spec writes
  `from src.minimodel...`: `src/` is the package's folder, not a package; uv installs
  `minimodel` from it.
- **The lab is this folder**, not `experiments/X2-multimodal/lab-00-tiny-vit/`; the theory
  notes the spec cites (`theory/01-vision-transformers.md`) are the course's, not in it. Their
  einsum for patchify is `np.einsum("bhpwqc->bhwpqc", x.reshape(B, H // P, P, W // P, P,
  C))`;
  reshapes, a transpose or loops do as well.
- **`render_icon` takes a `seed`** (default 0) beside the spec's arguments, so that
  `generate_icons.py --seed 1` draws new icons for a fresh test.

## How long things take

Measured on {machine} with the solution filled in, as whole commands (uv's start included):
grading Block B {b}, C {c}, D {d}, E {e}; the first command {train}. A busy machine, or a
slower laptop, may take twice as long; the spec asks for ≤ 5 minutes of training.
"""


RECORD = ".student_edition.json"  # what an edition's folder holds of ours: {path: sha256}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def edition(solved=""):
    """{path: bytes} of the edition: the lab's files with stubs, BLUEPRINT.md, STUDENT.md."""
    out = {}
    for path in files():
        source = (LAB / path).read_bytes()
        out[path] = stub(source.decode(), solved, path).encode() if path.endswith(".py") \
            else source
    out["BLUEPRINT.md"] = BLUEPRINT.encode()
    out["STUDENT.md"] = STUDENT.format(**TIMES, lines=lines_per_block(),
                                       params=n_parameters(ViTConfig())).encode()
    out["README.md"] = (b"# Lab 00: a tiny ViT on grammar icons (student edition)\n\n"
                        b"Start with [STUDENT.md](STUDENT.md).\n")
    return out


def check_place(out):
    """Refuse a folder the edition must never write into: the lab, inside it, or around it."""
    if out == LAB or LAB in out.parents:
        raise LabError(f"{printable(out)}: the lab itself or a folder inside it; choose a folder "
                       f"outside the lab")
    if out in LAB.parents:
        raise LabError(f"{printable(out)}: holds the lab ({printable(LAB)}); choose a new folder "
                       f"beside it, e.g. {printable(LAB.parent / 'lab-00-student')}")
    if out.exists() and not out.is_dir():
        raise LabError(f"{printable(out)}: not a folder; choose a new or empty folder")


def earlier(out):
    """{path: sha256} that an earlier edition in `out` wrote ({} for a new or empty folder).
    Refuses a folder holding anything else, or a git repository of its own below it."""
    if not out.exists() or not any(out.iterdir()):
        return {}
    record = out / RECORD
    try:
        written = json.loads(record.read_bytes())["files"]
        assert isinstance(written, dict) and all(isinstance(h, str) for h in written.values())
    except FileNotFoundError:
        found = sorted(p.name for p in out.iterdir())
        raise LabError(f"{printable(out)}: holds files this command did not write "
                       f"({printable(', '.join(found[:3]))}{', ...' * (len(found) > 3)}); "
                       f"choose a new or empty folder") from None
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise LabError(f"{printable(record)}: not the record of an edition this command made; "
                       f"choose a new or empty folder") from None
    for folder, subfolders, names in os.walk(out):
        here = Path(folder)
        if here == out:
            subfolders[:] = [d for d in subfolders if d != ".git"]  # the edition's own repository
        elif ".git" in subfolders or ".git" in names:
            raise LabError(f"{printable(here)}: a git repository inside the edition; move it out "
                           f"first, nothing was written")
    return written


def make(out, solved="", replace=False, log=print):
    """Write the student edition into the folder `out`: a new or empty one, or one holding an
    edition this command made. Only files it wrote, unchanged since, are replaced or removed;
    any other file in the way (a student's Block, a note) stops it, unless `replace`, and then
    they are named before they are replaced. -> the folder."""
    out = Path(out).resolve()
    check_place(out)
    new, old = edition(solved), earlier(out)
    replaced, removed = [], []
    for path in sorted(set(new) | set(old)):
        target = out / path
        if not (target.exists() or target.is_symlink()):
            continue
        if not target.resolve().is_relative_to(out) or not target.is_file():
            raise LabError(f"{printable(target)}: a folder or a link where the edition writes a "
                           f"file; move it out of the way first")
        mine = sha256(target.read_bytes())
        if path in new and mine == sha256(new[path]):
            continue  # already as the edition has it
        if old.get(path) != mine:  # not written by us, or changed since: a student's work
            replaced.append(path)
        elif path not in new:
            removed.append(path)
    if replaced and not replace:
        raise LabError(f"{printable(out)}: {len(replaced)} file(s) changed since the edition "
                       f"wrote them, or not written by it: {printable(', '.join(replaced[:4]))}"
                       f"{', ...' * (len(replaced) > 4)}; copy them elsewhere, or add --replace "
                       f"to replace them")
    if replaced:
        log(f"replacing {len(replaced)} file(s) changed since the edition wrote them, or not "
            f"written by it: {', '.join(replaced)}")
        removed += [p for p in replaced if p not in new]
    for path, data in new.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda f, data=data: f.write(data))
    for path in removed:  # ours, no longer in the edition
        (out / path).unlink()
    record = {"made_by": "student_edition.py", "solved": solved,
              "files": {path: sha256(data) for path, data in sorted(new.items())}}
    atomic_write(out / RECORD, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    return out


# measured on a 2-core AMD EPYC without AVX-512 (NumPy 2.4, OpenBLAS's Haswell kernel),
# 2026-12-06, quiet, with the solution filled in: `uv run pytest -m block_x` as a whole command
# (uv's start included), and the lab's first command in a fresh clone
TIMES = {"b": "7 s", "c": "4 s", "d": "2.5 s", "e": "2 s",
         "train": "about 45 s of training, about 60 s in all",
         "machine": "a 2-core AMD EPYC (2026-12-06, nothing else running)"}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Make the student edition of this lab: the "
                                 "solution's marked parts replaced by stubs, with a grader.")
    ap.add_argument("--out", required=True, help="a new or empty folder outside the lab, or "
                    "one holding an edition this command made (its files are updated; nothing "
                    "else there is touched)")
    ap.add_argument("--solved", default="", metavar="BLOCKS", help="Blocks to hand out solved, "
                    "e.g. BE (default: none)")
    ap.add_argument("--replace", action="store_true", help="replace files in the way that the "
                    "edition did not write or that changed since (a student's Blocks): listed "
                    "first")
    args = ap.parse_args(argv)
    if set(args.solved) - set(BLOCKS):
        ap.error(f"--solved takes Blocks among {BLOCKS}, got {args.solved!r}")
    out = make(args.out, args.solved.upper(), args.replace)
    print(f"wrote the student edition to {from_here(out)}/: its STUDENT.md says what to do")


if __name__ == "__main__":
    run_cli(main)
