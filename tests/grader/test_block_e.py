"""Block E, evaluation: the confusion matrix on a known case. `uv run pytest -m block_e`."""

import numpy as np
import pytest

from eval import confusion

pytestmark = pytest.mark.block_e


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert np.array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert cm.trace() == 4 and cm.sum() == 6


def test_a_class_never_seen_has_an_empty_row():
    cm = confusion(np.array([0, 1]), np.array([1, 1]), 4)
    assert cm.shape == (4, 4) and cm[2].sum() == 0 and cm[3].sum() == 0
