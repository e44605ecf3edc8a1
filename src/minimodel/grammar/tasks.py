"""What a run predicts: which factors of a verb form (`TASKS`), and with which head (`HEADS`)."""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from minimodel.grammar.verbs import PERSONS, TENSES, VERBS

FACTORS = {"verb": VERBS, "tense": TENSES, "person": PERSONS}
TASKS = {"tense": ("tense",), "tense_person": ("tense", "person"),
         "full": ("verb", "tense", "person")}
HEADS = ("flat", "factorised")


@dataclass(frozen=True)
class Task:
    """Which factors of a verb form to predict (`name`), and how (`head`).

    An icon's class is the combination of its factors, numbered factor by factor in the order
    of TASKS (for `full` that is class_id). A flat head has one output per class, one softmax;
    a factorised head one output per value of each factor (20 + 5 + 3 for `full`), one softmax
    per factor, and predicts the combination of the three answers.
    """

    name: str = "tense"
    head: str = "flat"

    @property
    def sizes(self):  # values per factor, e.g. (20, 5, 3)
        return tuple(len(FACTORS[f]) for f in TASKS[self.name])

    @property
    def class_names(self):
        return [" ".join(c) for c in itertools.product(*(FACTORS[f] for f in TASKS[self.name]))]

    @property
    def n_outputs(self):
        return sum(self.sizes) if self.head == "factorised" else math.prod(self.sizes)

    @property
    def groups(self):  # how cross_entropy reads the head's outputs
        return self.sizes if self.head == "factorised" else None

    def targets(self, dataset):
        """What the loss compares with: class ids (N,) for a flat head, factor ids (N, k)
        for a factorised one."""
        ids = np.stack([dataset.ids(f"{f}_id") for f in TASKS[self.name]], axis=1)  # (N, k)
        return ids if self.head == "factorised" else self.classes(ids)

    def classes(self, y):
        """Targets (either form) -> class ids (N,)."""
        return np.ravel_multi_index(tuple(y.T), self.sizes) if y.ndim == 2 else y

    def decode(self, logits):
        """Logits (N, n_outputs) -> predicted class ids (N,)."""
        if self.head == "flat":
            return logits.argmax(axis=1)
        parts = np.split(logits, np.cumsum(self.sizes)[:-1], axis=1)
        return np.ravel_multi_index(tuple(p.argmax(axis=1) for p in parts), self.sizes)


def run_name(task, split):
    """tense, full_factorised, full_factorised_combos, ...: the key of a run in a manifest."""
    parts = [task.name]
    if task.head != "flat":
        parts.append(task.head)
    if split != "stratified":
        parts.append(split)
    return "_".join(parts)
