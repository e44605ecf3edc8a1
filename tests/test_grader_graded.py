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
    # B: the dataset
    ("B", "the same number of icons for every combination", "generate_icons.py",
     [("for idx in range(counts[class_id(v, t, p)])]", "for idx in range(n // 300)]")]),
    ("B", "icons numbered from 1", "generate_icons.py",
     [("for idx in range(counts[class_id(v, t, p)])]",
       "for idx in range(1, counts[class_id(v, t, p)] + 1)]")]),
    ("B", "the dataset's seed not passed on", "generate_icons.py",
     [("PERSONS[p], idx, seed=seed)", "PERSONS[p], idx)")]),
    ("B", "the dataset drawn without jitter", "generate_icons.py",
     [("PERSONS[p], idx, seed=seed)", "PERSONS[p], idx, jitter=False, seed=seed)")]),
    ("B", "icons saved as JPEG", "generate_icons.py",
     [('.save(Path(folder) / "icons" / lab["filename"])',
       '.save(Path(folder) / "icons" / lab["filename"], format="JPEG")')]),
    ("B", "the sample grid always the first icons", "generate_icons.py",
     [("pick = np.random.default_rng(seed).choice(len(labels), n, replace=False)",
       "pick = np.arange(n)")]),
    ("B", "the sample titles without the person", "generate_icons.py",
     [("f\"{TENSES[lab['tense_id']]} · {PERSONS[lab['person_id']]}\"",
       "f\"{TENSES[lab['tense_id']]}\"")]),
    # D: the split
    ("D", "a random split, not stratified", "generate_icons.py",
     [("    test = one_per_combination(labels, range(len(labels)), round(len(labels) * test_fraction),\n"
       "                               rng)\n"
       "    rest = sorted(set(range(len(labels))) - set(test))\n"
       "    val = one_per_combination(labels, rest, round(len(labels) * val_fraction), rng)\n",
       "    order = rng.permutation(len(labels)).tolist()\n"
       "    test, rest = order[:round(len(labels) * test_fraction)], order[round(len(labels) * test_fraction):]\n"
       "    val = rest[:round(len(labels) * val_fraction)]\n")]),
    ("D", "validation drawn from the test icons too", "generate_icons.py",
     [("rest = sorted(set(range(len(labels))) - set(test))", "rest = range(len(labels))")]),
    ("D", "the split's seed ignored", "generate_icons.py",
     [("    rng = np.random.default_rng(seed)\n    test = one_per_combination(",
       "    rng = np.random.default_rng()\n    test = one_per_combination(")]),
    ("D", "test and validation sizes swapped", "generate_icons.py",
     [("round(len(labels) * test_fraction)", "round(len(labels) * val_fraction)")]),
    # D: the loop
    ("D", "never shuffled", "train.py",
     [("perm = rng.permutation(len(x_train))", "perm = np.arange(len(x_train))")]),
    ("D", "shuffled once, not every epoch", "train.py",
     [("    for epoch in range(1, epochs + 1):\n        perm = rng.permutation(len(x_train))\n",
       "    perm = rng.permutation(len(x_train))\n    for epoch in range(1, epochs + 1):\n")]),
    ("D", "gradients never zeroed", "train.py", [("            model.zero_grad()\n", "")]),
    ("D", "no schedule", "train.py",
     [("opt.step(cosine_lr(step, total, lr))", "opt.step(lr)")]),
    ("D", "the schedule stepped in epochs' units", "train.py",
     [("opt.step(cosine_lr(step, total, lr))", "opt.step(cosine_lr(step, epochs, lr))")]),
    ("D", "the step count never advanced", "train.py", [("            step += 1\n", "")]),
    ("D", "training without dropout (train=False)", "train.py",
     [("logits = model.forward(xb, train=True)", "logits = model.forward(xb)")]),
    ("D", "held-out accuracy on the training icons", "train.py",
     [("float((predict(model.forward(x_val)) == y_val).mean())",
       "float((predict(model.forward(x_train)) == y_train).mean())")]),
    ("D", "a batch one short", "train.py",
     [("idx = perm[i:i + batch_size]", "idx = perm[i:i + batch_size - 1]")]),
    ("D", "the log line without the loss", "train.py",
     [("log(f\"epoch {epoch:2d}/{epochs}  loss {history[-1]['train_loss']:.4f}  \"",
       "log(f\"epoch {epoch:2d}/{epochs}  \"")]),
    ("D", "accuracy.png without the held-out accuracy", "train.py",
     [('ax.plot(epochs, [100 * h["val_accuracy"] for h in history], "s-"',
       'ax.plot(epochs, [100 * h["train_accuracy"] for h in history], "s-"')]),
    # E: the evaluation
    ("E", "the model given raw uint8 pixels", "eval.py",
     [("predict(model.forward(to_inputs(images)))", "predict(model.forward(images))")]),
    ("E", "argmax in place of the task's decoding", "eval.py",
     [("predict(model.forward(to_inputs(images)))",
       "model.forward(to_inputs(images)).argmax(axis=1)")]),
    ("E", "accuracy as a count", "eval.py",
     [("float((y_true == y_pred).mean())", "float((y_true == y_pred).sum())")]),
    ("E", "the figure transposed", "eval.py",
     [('ax.imshow(rates, cmap="Blues"', 'ax.imshow(rates.T, cmap="Blues"')]),
    ("E", "the rows' names reversed", "eval.py",
     [("ax.set_yticks(range(n), names, fontsize=8)", "ax.set_yticks(range(n), names[::-1], fontsize=8)")]),
    ("E", "shares written in place of counts", "eval.py",
     [("ax.text(j, i, cm[i, j],", "ax.text(j, i, f\"{rates[i, j]:.0%}\",")]),
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
    ("B", "the icons listed person by person", "generate_icons.py",
     [("for v in range(len(VERBS)) for t in range(len(TENSES)) for p in range(len(PERSONS))\n"
       "            for idx in range(counts[class_id(v, t, p)])]",
       "for p in range(len(PERSONS)) for t in range(len(TENSES)) for v in range(len(VERBS))\n"
       "            for idx in range(counts[class_id(v, t, p)])]")]),
    ("B", "labels.json sorted, written compactly", "generate_icons.py",
     [("json.dumps(labels, indent=2)", "json.dumps(sorted(labels, key=lambda lab: lab['filename']))")]),
    ("B", "the sample drawn by a permutation", "generate_icons.py",
     [("pick = np.random.default_rng(seed).choice(len(labels), n, replace=False)",
       "pick = np.random.default_rng(seed).permutation(len(labels))[:n]")]),
    ("D", "a per-tense split without the fullest-first rule", "generate_icons.py",
     [("        order = sorted(range(len(combos)), key=lambda j: (-len(by_combo[combos[j]]), key[j]))",
       "        order = sorted(range(len(combos)), key=lambda j: key[j])")]),
    ("D", "the cosine per epoch, as the spec allows", "train.py",
     [("opt.step(cosine_lr(step, total, lr))", "opt.step(cosine_lr(epoch - 1, epochs, lr))")]),
    ("D", "gradients zeroed after each step", "train.py",
     [("            model.zero_grad()\n            logits", "            logits"),
      ("            opt.step(cosine_lr(step, total, lr))\n",
       "            opt.step(cosine_lr(step, total, lr))\n            model.zero_grad()\n")]),
    ("D", "shuffled in place", "train.py",
     [("perm = rng.permutation(len(x_train))", "perm = np.arange(len(x_train))\n        rng.shuffle(perm)")]),
    ("D", "another log line", "train.py",
     [("        shown = \"   —  \" if val_acc is None else f\"{val_acc:6.1%}\"\n"
       "        log(f\"epoch {epoch:2d}/{epochs}  loss {history[-1]['train_loss']:.4f}  \"\n"
       "            f\"train acc {correct / len(x_train):6.1%}  val acc {shown}  \"\n"
       "            f\"{elapsed:5.1f}s elapsed, ~{elapsed / epoch * (epochs - epoch):4.1f}s left\")\n",
       "        log(f\"epoch {epoch}: training loss {np.mean(losses):.3f}, held-out accuracy \"\n"
       "            f\"{val_acc}\")\n")]),
    ("E", "scored in batches of 64", "eval.py",
     [("y_pred = predict(model.forward(to_inputs(images)))",
       "y_pred = predict(np.concatenate([model.forward(to_inputs(images[i:i + 64]))\n"
       "                                     for i in range(0, len(images), 64)]))")]),
    ("E", "the counts drawn, not the shares", "eval.py",
     [('ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)', 'ax.imshow(cm, cmap="Blues")')]),
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
