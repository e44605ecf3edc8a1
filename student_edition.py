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
"""

try:  # the lab's packages live in the environment uv makes; without it, say so in one line
    from minimodel.start import quiet_start
except ModuleNotFoundError as missing:
    raise SystemExit(f"error: {missing.name} is not installed for this Python; run the lab "
                     f"through uv: `uv run python student_edition.py`") from None
quiet_start(__name__)  # Ctrl-C from here on: one line, even while NumPy loads

import argparse
import re
import shutil
import subprocess
from pathlib import Path

from minimodel.files import LabError, from_here, printable, run_cli

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
Phase 17 transformer block (given: `src/minimodel/transformer/`), and train it to read the tense
off synthetic icons. The whole assignment is in the spec; here is how to work through it.

```bash
uv run python generate_icons.py && uv run python train.py && uv run python eval.py
uv run pytest
```

The first line is the lab's main job: it stops, in one line, at the first part you have not
written yet. The second lists every test; each Block's tests fail with NotImplementedError until
you write that Block.

| block | what you write | where | grade it with | grading time |
|---|---|---|---|---|
| A | your design | BLUEPRINT.md | your instructor | |
| B | the icons: `shape_mask`, `render_icon`, `label` | generate_icons.py | `uv run pytest -m block_b` | {b} |
| C | `patchify`, `unpatchify`; `TinyViT`: its parameters, `embed`, `encode`, `forward`, `backward`, `encode_backward` | vit.py | `uv run pytest -m block_c` | {c} |
| D | `cross_entropy`, `SGD.step`, `cosine_lr` | vit.py, train.py | `uv run pytest -m block_d` | {d} |
| E | `confusion` | eval.py | `uv run pytest -m block_e` | {e} |

Each part is marked `raise NotImplementedError("Block X: ...")` with a one-line hint; the code
around it (the Phase 17 block and its layers, checkpoints, plots, the data format) is given. The
graders test what the spec asks, not one way to write it: patchify by reshapes or by loops, any
initialisation, any correct order of operations. Block D's last test trains your Block C model,
so it passes once both are written.

When all four pass, the first command trains the tense task with the spec's recipe (20 epochs,
SGD with momentum 0.9, LR 0.001 on a cosine schedule, batch 32): {train} on {machine}. The
acceptance is ≥ 80% of the test icons within 5 minutes; then try the stretch goals
(`uv run python train.py --help`: `--task tense_person`, `--task full`, and the model's options).
"""


def make(out, solved=""):
    """Write the student edition into the folder `out` (new, or holding an earlier edition)."""
    out = Path(out).resolve()
    if out == LAB or LAB in out.parents:
        raise LabError(f"{printable(out)}: inside the lab; choose a folder outside it")
    if out.exists() and any(out.iterdir()):
        if not (out / "STUDENT.md").is_file():  # only an earlier edition is replaced
            raise LabError(f"{printable(out)}: holds files that are not a student edition; "
                           f"choose a new or empty folder")
        shutil.rmtree(out)
    for path in files():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        source = LAB / path
        if path.endswith(".py"):
            target.write_text(stub(source.read_text(), solved, path))
        else:
            shutil.copyfile(source, target)
    (out / "BLUEPRINT.md").write_text(BLUEPRINT)
    (out / "STUDENT.md").write_text(STUDENT.format(**TIMES))
    (out / "README.md").write_text("# Lab 00: a tiny ViT on grammar icons (student edition)\n\n"
                                   "Start with [STUDENT.md](STUDENT.md).\n")
    return out


# measured on a 2-core AMD EPYC (NumPy 2.4, OpenBLAS), 2026-12-01, with the solution filled in:
# `uv run pytest -m block_x` as a whole command (uv's start included), and the lab's first command
TIMES = {"b": "6 s", "c": "2.5 s", "d": "1.6 s", "e": "1.5 s",
         "train": "about 15 s of training, about 25 s for the whole first command",
         "machine": "a 2-core AMD EPYC"}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Make the student edition of this lab: the "
                                 "solution's marked parts replaced by stubs, with a grader.")
    ap.add_argument("--out", required=True, help="a folder outside the lab (made, or replaced "
                    "if it holds an earlier edition)")
    ap.add_argument("--solved", default="", metavar="BLOCKS", help="Blocks to hand out solved, "
                    "e.g. BE (default: none)")
    args = ap.parse_args(argv)
    if set(args.solved) - set(BLOCKS):
        ap.error(f"--solved takes Blocks among {BLOCKS}, got {args.solved!r}")
    out = make(args.out, args.solved.upper())
    print(f"wrote the student edition to {from_here(out)}/: its STUDENT.md says what to do")


if __name__ == "__main__":
    run_cli(main)
