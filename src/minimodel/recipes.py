"""How each run trains, by name: the spec's recipe, and the one chosen for each run on validation
icons (`sweep.py --select`; every candidate and its figures: results/selection.json).

train.py trains a run with its chosen recipe unless `--recipe spec` or an explicit option says
otherwise; sweep.py trains the final models with the same table. A run is named by
`tasks.run_name`: its task, then its head and split where they are not the defaults.
"""

SPEC = {"epochs": 20, "lr": 1e-3, "shift": 0, "batch_size": 32}  # SGD, momentum 0.9, cosine

LONG = {**SPEC, "epochs": 300, "lr": 0.05, "shift": 2}  # the 300-class runs
CHOSEN = {
    "tense": SPEC,
    "tense_person": {**SPEC, "epochs": 100, "lr": 0.05, "shift": 2},
    "full": LONG,
    "full_factorised": LONG,
    "full_factorised_combos": LONG,
}
RECIPES = ("chosen", "spec")  # train.py --recipe


def recipe(run, which="chosen"):
    """{epochs, lr, shift, batch_size} of `run` (a run name): chosen for it, or the spec's. A
    run that has no chosen recipe (a combination never selected for) trains with the spec's."""
    return dict(SPEC if which == "spec" else CHOSEN.get(run, SPEC))
