# ruff: noqa: ISC004  (the table's multi-line edits are strings spelled over lines)
"""The grader, graded: mistakes students make, each written into the solution's marked Blocks as a
text edit, must fail that Block's grader; correct code written otherwise must pass it.

Each case runs the Block's grader on a copy of the lab's scripts with the edit made, as a student's
`uv run pytest -m block_x` would. The kill rate per Block is the share of its MISTAKES whose test
passes here (all of them, or this test fails)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).parents[1]

# (Block, what the student did, file, [(solution text, the student's text), ...])
MISTAKES = [
    # B: the icons
    ("B", "triangle pointing down", "generate_icons.py",
     [("u * math.cos(a) - v * math.sin(a) >= -R / 2", "u * math.cos(a) + v * math.sin(a) >= -R / 2")]),
    ("B", "circle radius not squared", "generate_icons.py",
     [("return u * u + v * v <= RADIUS**2", "return u * u + v * v <= RADIUS")]),
    ("B", "square as a union of bands", "generate_icons.py",
     [("(np.abs(u) <= 0.85 * RADIUS) & (np.abs(v)", "(np.abs(u) <= 0.85 * RADIUS) | (np.abs(v)")]),
    ("B", "colour channels reversed", "generate_icons.py",
     [("np.array(TENSE_COLOR[tense], dtype=float)", "np.array(TENSE_COLOR[tense][::-1], dtype=float)")]),
    ("B", "noise without jitter", "generate_icons.py",
     [("    if jitter:\n        img += rng.normal(0, 3, img.shape)",
       "    img += rng.normal(0, 3, img.shape)")]),
    ("B", "colour jitter into another tense", "generate_icons.py",
     [("color += rng.uniform(-10, 10, 3)", "color += rng.uniform(-60, 60, 3)")]),
    ("B", "background forgotten", "generate_icons.py",
     [("img = ((1 - shape)[..., None] * BACKGROUND + body", "img = (body")]),
    ("B", "class_id from the wrong order", "generate_icons.py",
     [('"class_id": class_id(v, t, p)}', '"class_id": (t * 20 + v) * 3 + p}')]),
    ("B", "tense and person swapped in the filename", "generate_icons.py",
     [("filename(VERBS[v], TENSES[t], PERSONS[p], idx)", "filename(VERBS[v], PERSONS[p], TENSES[t], idx)")]),
    ("B", "ids counted from 1", "generate_icons.py", [('"verb_id": v,', '"verb_id": v + 1,')]),
    # C: the ViT
    ("C", "patchify without the transpose", "vit.py",
     [("    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)\n", "")]),
    ("C", "patches in column-major order", "vit.py",
     [("x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)",
       "x.transpose(0, 3, 1, 2, 4, 5)  # (B, nh, nw, P, P, C)")]),
    ("C", "pixels in (column, row) order inside a patch", "vit.py",
     [("x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)",
       "x.transpose(0, 1, 3, 4, 2, 5)  # (B, nh, nw, P, P, C)")]),
    ("C", "unpatchify without the transpose", "vit.py",
     [("    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, P, nw, P, C)\n", "")]),
    ("C", "[CLS] appended last", "vit.py",
     [("np.concatenate([cls, x], axis=1)", "np.concatenate([x, cls], axis=1)")]),
    ("C", "no position embedding added", "vit.py",
     [('        if "pos" in p:\n            x += p["pos"]  # broadcast over B\n', "")]),
    ("C", "position embedding initialised to zero", "vit.py",
     [('self.rng.normal(0, 0.02, (1, cfg.n_tokens, d))', 'np.zeros((1, cfg.n_tokens, d))')]),
    ("C", "dropout in evaluation too", "vit.py",
     [("self.cfg.dropout if train else 0.0", "self.cfg.dropout")]),
    ("C", "the head reads the last token", "vit.py",
     [("self.blocks[-1].forward(x, train, n_queries=1)[:, 0]",
       "self.blocks[-1].forward(x, train)[:, -1]")]),
    ("C", "final LayerNorm skipped", "vit.py",
     [('        feat, self.c_ln = self.ops.layernorm_forward(pooled, p["ln_gain"], p["ln_bias"])\n'
       '        return feat\n', "        return pooled\n")]),
    ("C", "pos gradient assigned, not added", "vit.py",
     [('g["pos"] += dx.sum(axis=0, keepdims=True)', 'g["pos"] = dx.sum(axis=0, keepdims=True)')]),
    ("C", "head gradient assigned, not added", "vit.py",
     [('self.grads["W_head"] += dW', 'self.grads["W_head"] = dW')]),
    ("C", "[CLS] gradient from a patch's token", "vit.py",
     [('g["cls"] += dx[:, :1]', 'g["cls"] += dx[:, 1:2]')]),
    # D: the training step
    ("D", "softmax without subtracting the max", "vit.py",
     [("z = logits - logits.max(axis=1, keepdims=True)", "z = logits")]),
    ("D", "shifted by the true class's logit", "vit.py",
     [("z = logits - logits.max(axis=1, keepdims=True)",
       "z = logits - logits[np.arange(B), y][:, None]")]),
    ("D", "gradient not divided by the batch", "vit.py",
     [("return float(loss), dlogits / B", "return float(loss), dlogits")]),
    ("D", "loss summed, not averaged", "vit.py",
     [("loss = -logp[np.arange(B), y].mean()", "loss = -logp[np.arange(B), y].sum()")]),
    ("D", "one-hot at the predicted class", "vit.py",
     [("dlogits[np.arange(B), y] -= 1.0", "dlogits[np.arange(B), logits.argmax(axis=1)] -= 1.0")]),
    ("D", "no momentum", "vit.py",
     [("self.p -= lr * self.v", "self.p -= lr * self.g")]),
    ("D", "LR inside the velocity", "vit.py",
     [("self.v += self.g\n        self.p -= lr * self.v",
       "self.v += lr * self.g\n        self.p -= self.v")]),
    ("D", "momentum with dampening", "vit.py",
     [("self.v += self.g", "self.v += (1 - self.momentum) * self.g")]),
    ("D", "parameters rebound, not updated in place", "vit.py",
     [("self.p -= lr * self.v", "self.p = self.p - lr * self.v")]),
    ("D", "a whole cosine period", "train.py",
     [("math.cos(math.pi * step / total)", "math.cos(2 * math.pi * step / total)")]),
    ("D", "cosine without the half", "train.py",
     [("return lr * 0.5 * (1.0 + math.cos", "return lr * (1.0 + math.cos")]),
    ("D", "cosine rising", "train.py", [("0.5 * (1.0 + math.cos", "0.5 * (1.0 - math.cos")]),
    # E: the evaluation
    ("E", "rows predicted, columns true", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "np.add.at(cm, (y_pred, y_true), 1)")]),
    ("E", "fancy-index += counts a repeated pair once", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "cm[y_true, y_pred] += 1")]),
    ("E", "size from the largest label seen", "eval.py",
     [("cm = np.zeros((n, n), dtype=np.int64)",
       "cm = np.zeros((max(y_true.max(), y_pred.max()) + 1,) * 2, dtype=np.int64)")]),
    ("E", "classes renumbered by np.unique", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)",
       "seen = np.unique(np.concatenate([y_true, y_pred]))\n"
       "    np.add.at(cm, (np.searchsorted(seen, y_true), np.searchsorted(seen, y_pred)), 1)")]),
    ("E", "rates instead of counts", "eval.py",
     [("    return cm\n", "    return cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)\n")]),
    ("E", "only the diagonal counted", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "np.add.at(cm, (y_true, y_true), 1)")]),
    ("E", "bincount without minlength", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "cm = np.bincount(y_true * n + y_pred).reshape(n, n)")]),
    ("E", "classes counted from 1", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "np.add.at(cm, (y_true - 1, y_pred - 1), 1)")]),
    ("E", "last pair dropped", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "np.add.at(cm, (y_true[:-1], y_pred[:-1]), 1)")]),
]

PATCHIFY = ("    x = x.reshape(B, H // P, P, W // P, P, C)  # (B, nh, P, nw, P, C)\n"
            "    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)\n"
            "    return x.reshape(B, (H // P) * (W // P), P * P * C)  # (B, N, P·P·C)\n")
PATCHIFY_BY_LOOPS = """    out = np.empty((B, (H // P) * (W // P), P * P * C), x.dtype)
    for i in range(H // P):
        for j in range(W // P):
            out[:, i * (W // P) + j] = x[:, i * P:(i + 1) * P, j * P:(j + 1) * P].reshape(B, -1)
    return out
"""

ALTERNATIVES = [
    ("B", "circle by np.hypot", "generate_icons.py",
     [("return u * u + v * v <= RADIUS**2", "return np.hypot(u, v) <= RADIUS")]),
    ("B", "square by the larger coordinate", "generate_icons.py",
     [("return (np.abs(u) <= 0.85 * RADIUS) & (np.abs(v) <= 0.85 * RADIUS)",
       "return np.maximum(np.abs(u), np.abs(v)) <= 0.9 * RADIUS")]),
    ("B", "a larger triangle", "generate_icons.py", [("R = 1.25 * RADIUS", "R = 1.35 * RADIUS")]),
    ("B", "painted in layers: background, shape, ink", "generate_icons.py",
     [("img = ((1 - shape)[..., None] * BACKGROUND + body[..., None] * color\n"
       "           + ink[..., None] * np.array(INK, dtype=float))",
       "img = np.broadcast_to(np.array(BACKGROUND, dtype=float), (SIZE, SIZE, 3))\n"
       "    img = img + shape[..., None] * (color - img)\n"
       "    img = img + ink[..., None] * (np.array(INK, dtype=float) - color)")]),
    ("B", "brightness jitter", "generate_icons.py",
     [("color += rng.uniform(-10, 10, 3)", "color *= rng.uniform(0.95, 1.05)")]),
    ("B", "class_id written out", "generate_icons.py",
     [('"class_id": class_id(v, t, p)}', '"class_id": (v * len(TENSES) + t) * len(PERSONS) + p}')]),
    ("C", "the spec's (65, 64) position embedding", "vit.py",
     [("self.rng.normal(0, 0.02, (1, cfg.n_tokens, d))", "self.rng.normal(0, 0.02, (cfg.n_tokens, d))"),
      ('g["pos"] += dx.sum(axis=0, keepdims=True)', 'g["pos"] += dx.sum(axis=0)')]),
    ("C", "[CLS] of shape (d,)", "vit.py",
     [("self.rng.normal(0, 0.02, (1, 1, d))", "self.rng.normal(0, 0.02, d)"),
      ('g["cls"] += dx[:, :1].sum(axis=0, keepdims=True)', 'g["cls"] += dx[:, 0].sum(axis=0)')]),
    ("C", "[CLS] of shape (1, d)", "vit.py",
     [("self.rng.normal(0, 0.02, (1, 1, d))", "self.rng.normal(0, 0.02, (1, d))"),
      ('g["cls"] += dx[:, :1].sum(axis=0, keepdims=True)', 'g["cls"] += dx[:, 0].sum(axis=0, keepdims=True)')]),
    ("C", "patchify by loops", "vit.py",
     [(PATCHIFY, PATCHIFY_BY_LOOPS)]),
    ("C", "patchify by einsum", "vit.py",
     [("    x = x.transpose(0, 1, 3, 2, 4, 5)  # (B, nh, nw, P, P, C)\n",
       '    x = np.einsum("bhpwqc->bhwpqc", x)\n')]),
    ("C", "a random head", "vit.py",
     [('"W_head": np.zeros((d, cfg.n_classes))', '"W_head": self.rng.normal(0, 0.02, (d, cfg.n_classes))')]),
    ("C", "uniform patch-embedding init", "vit.py",
     [("self.rng.normal(0, 1 / math.sqrt(cfg.patch_dim), (cfg.patch_dim, d))",
       "self.rng.uniform(-0.1, 0.1, (cfg.patch_dim, d))")]),
    ("C", "every token through the last block", "vit.py",
     [("self.blocks[-1].forward(x, train, n_queries=1)[:, 0]", "self.blocks[-1].forward(x, train)[:, 0]"),
      ("dx = dpooled[:, None]  # (B, 1, d): the last block's only output",
       "dx = np.zeros((len(dpooled), self.cfg.n_tokens, dpooled.shape[1]), dpooled.dtype)\n"
       "            dx[:, 0] = dpooled")]),
    ("D", "log-sum-exp by np.logaddexp", "vit.py",
     [("logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))",
       "logp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)")]),
    ("D", "one-hot subtracted as a matrix", "vit.py",
     [("dlogits[np.arange(B), y] -= 1.0", "dlogits -= np.eye(logits.shape[1])[y]")]),
    ("D", "velocity rebound", "vit.py",
     [("self.v *= self.momentum\n        self.v += self.g",
       "self.v = self.momentum * self.v + self.g")]),
    ("D", "parameters updated through a slice", "vit.py",
     [("self.p -= lr * self.v", "self.p[:] = self.p - lr * self.v")]),
    ("D", "cosine as a squared cosine", "train.py",
     [("return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))",
       "return lr * math.cos(math.pi * step / (2 * total)) ** 2")]),
    ("E", "bincount with minlength", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)",
       "cm += np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)")]),
    ("E", "a loop", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)", "for t, p in zip(y_true, y_pred):\n        cm[t, p] += 1")]),
    ("E", "histogram2d", "eval.py",
     [("np.add.at(cm, (y_true, y_pred), 1)",
       "cm = np.histogram2d(y_true, y_pred, bins=n, range=[[0, n], [0, n]])[0].astype(np.int64)")]),
]


def marked(text, block):
    """The spans of `text` between `# BEGIN BLOCK block` and its END."""
    return [m.span() for m in re.finditer(rf"# BEGIN BLOCK {block}:.*?# END BLOCK {block}", text,
                                          re.DOTALL)]


def grade(tmp_path, block, file, edits):
    """Block `block`'s grader, run on the lab's scripts with `edits` made to `file`."""
    for name in [p.name for p in LAB.glob("*.py")] + ["pyproject.toml"]:
        shutil.copyfile(LAB / name, tmp_path / name)
    shutil.copytree(LAB / "tests" / "grader", tmp_path / "tests" / "grader")
    shutil.copyfile(LAB / "tests" / "gradcheck.py", tmp_path / "tests" / "gradcheck.py")
    text = (LAB / file).read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{file}: {old!r} is not there exactly once"
        at = text.index(old)
        assert any(a <= at and at + len(old) <= b for a, b in marked(text, block)), \
            f"{file}: {old!r} is not in a part Block {block} asks the student to write"
        text = text.replace(old, new)
    (tmp_path / file).write_text(text)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           f"tests/grader/test_block_{block.lower()}.py"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)


def case_id(case):
    return f"{case[0]}: {case[1]}"


@pytest.mark.slow
@pytest.mark.parametrize("case", MISTAKES, ids=case_id)
def test_a_mistake_fails_its_blocks_grader(tmp_path, case):
    block, _, file, edits = case
    done = grade(tmp_path, block, file, edits)
    assert done.returncode == 1 and "NotImplementedError" not in done.stdout, done.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("case", ALTERNATIVES, ids=case_id)
def test_correct_code_written_otherwise_passes(tmp_path, case):
    block, _, file, edits = case
    done = grade(tmp_path, block, file, edits)
    assert done.returncode == 0, done.stdout[-3000:]


def test_enough_cases_for_every_block():
    """At least 8 mistakes and 3 alternatives per Block (issue 38)."""
    for block in "BCDE":
        assert sum(c[0] == block for c in MISTAKES) >= 8, block
        assert sum(c[0] == block for c in ALTERNATIVES) >= 3, block
