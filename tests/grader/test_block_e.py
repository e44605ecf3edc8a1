"""Block E, evaluation: a model's answers, its accuracy and confusion matrix, and the matrix's
figure, on known cases.
`uv run pytest -m block_e`."""

import numpy as np
import pytest

from eval import confusion, draw_confusion, score
from minimodel.files import pyplot

plt = pyplot()

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


class Known:
    """A model whose answers are known: an icon's class is its first pixel's red value mod 5.
    It takes images as the model does, float in [-1, 1]."""

    def forward(self, x, train=False):
        assert not train and x.dtype.kind == "f" and -1 <= x.min() and x.max() <= 1, \
            "score must give the model its input as in training: floats in [-1, 1] (to_inputs)"
        red = np.rint((x[:, 0, 0, 0] + 1) * 127.5).astype(int)
        return np.eye(5)[red % 5] + 0.01 * np.arange(5)  # (B, 5): one high logit


def icons(reds):
    out = np.full((len(reds), 32, 32, 3), 40, dtype=np.uint8)
    out[:, 0, 0, 0] = reds
    return out


def test_score_runs_the_model_and_counts_its_answers():
    images, y_true = icons([0, 1, 2, 3, 4, 6, 7, 10]), np.array([0, 1, 2, 3, 4, 0, 0, 0])
    y_pred, acc, cm = score(Known(), images, y_true, 5)
    assert np.array_equal(y_pred, [0, 1, 2, 3, 4, 1, 2, 0]), \
        f"predicted {list(y_pred)}: each icon's class is the argmax of its logits"
    assert acc == pytest.approx(6 / 8), f"accuracy {acc}, expected 6 of 8 right: 0.75"
    assert np.array_equal(cm, confusion(y_true, y_pred, 5)), "the third result is confusion(...)"


def test_score_reads_the_logits_as_it_is_told():
    """eval.py passes the task's decoding (a factorised head is not read by argmax)."""
    y_pred, _, _ = score(Known(), icons([0, 1, 2]), np.array([0, 1, 2]), 5,
                         predict=lambda logits: logits.argmin(axis=1))
    assert np.array_equal(y_pred, [1, 0, 0]), "use `predict` to turn the logits into classes"


def test_the_figure_draws_the_matrix_its_counts_and_names():
    cm = np.array([[5, 1, 0], [0, 3, 2], [1, 0, 4]])
    names = ["infinitive", "present_simple", "past_simple"]
    fig, ax = plt.subplots()
    draw_confusion(ax, cm, names, "TinyViT: 75%")
    drawn = [np.asarray(im.get_array(), float) for im in ax.get_images()]
    rates = cm / cm.sum(axis=1, keepdims=True)
    assert any(d.shape == cm.shape and (np.allclose(d, cm) or np.allclose(d, rates))
               for d in drawn), "draw the matrix as an image (imshow), rows true, columns predicted"
    texts = {t.get_text() for t in ax.texts}
    assert {str(c) for c in cm.flat if c} <= texts, \
        f"write each non-zero count in its cell (ax.text); found {sorted(texts)}"
    for axis, which in ((ax.get_xticklabels(), "x"), (ax.get_yticklabels(), "y")):
        assert [t.get_text() for t in axis] == names, \
            f"name the classes along the {which} axis, in order: {names}"
    assert ax.get_title() == "TinyViT: 75%", "give the panel its title"
    plt.close(fig)
