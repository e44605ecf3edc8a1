"""Block E, evaluation: the confusion matrix on known cases. `uv run pytest -m block_e`."""

import numpy as np
import pytest

from eval import confusion

pytestmark = pytest.mark.block_e


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    want = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert np.array_equal(cm, want), f"got\n{cm}\nexpected\n{np.array(want)}\n(row: true " \
                                     f"class, column: predicted class, a count in each cell)"


def test_every_pair_is_counted_even_when_repeated():
    cm = confusion(np.array([1, 1, 1, 0]), np.array([1, 1, 1, 1]), 2)
    assert cm[1, 1] == 3 and cm.sum() == 4, \
        (f"three icons of class 1 predicted 1 must count 3, got {cm[1, 1]}: cm[y_true, y_pred] "
         f"+= 1 counts a repeated pair once; np.add.at or a loop counts each")


def test_classes_that_never_occur_keep_their_rows_and_columns():
    """A class in the middle and one at the end with no icon and no prediction."""
    cm = confusion(np.array([0, 2, 2]), np.array([2, 0, 2]), 4)
    want = [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert cm.shape == (4, 4) and np.array_equal(cm, want), \
        (f"got\n{cm}\nexpected\n{np.array(want)}\n(n × n for n classes: class i is row i and "
         f"column i, whether or not it occurs)")
