import numpy as np
import pytest

from mnistnd.plotting import data as data_plots


def _split(labels):
    labels = np.asarray(labels)
    return np.zeros((labels.size, 784), np.float32), labels


@pytest.mark.parametrize("labels", [[0, 1, 10], [-1, 0, 1]])
def test_labels_outside_digits_are_refused(labels):
    with pytest.raises(ValueError, match="digit labels 0-9"):
        data_plots.class_counts({"train": _split(labels)})


def test_class_counts_has_labelled_axes():
    fig = data_plots.class_counts({"train": _split(np.repeat(np.arange(10), 3))})
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel()
