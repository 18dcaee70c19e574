"""Checkable exercises of the book: a registry and :func:`check`.

Every chapter ends with exercises (``{exercise}`` directives labelled ``<prefix>-<n>``). Those
with a computable answer are registered here. An entry knows

* which values of the chapter it needs (``inputs``: keyword name -> the chapter's expression
  that gives it; the student edition writes them into its check cells),
* how to recompute the expected answer from those values (``reference``), and
* how to compare an answer with it (a tolerance, an exact match or a choice).

The expected value is always recomputed from the chapter's own data and parameters, so a check
holds under every profile and data source. :func:`check` never shows the expected value: it
says "correct", or gives a hint, or explains what shape of answer it wants.

Examples
--------
In a chapter (or the student edition, ``mnistnd classroom``)::

    from mnistnd import exercises
    exercises.check("ari-1", answer, x_labels=X_labels, y_labels=Y_labels)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXERCISES", "Exercise", "Result", "check", "check_call", "grade", "labels"]

#: Chapter (file stem) -> label prefix of its exercises.
PREFIXES = {
    "data": "data", "mvae_training": "mvae", "embedding_properties": "embedding",
    "clustering_benchmark": "clustering", "pbmc_autoencoders": "pbmc", "moe_sim_vae": "moe",
    "appendix_ari": "ari", "appendix_cvi": "cvi", "appendix_density_peaks": "dp",
}

#: Class weights of exercise ari-2 (a parameter of the exercise, stated in its text).
ARI2_WEIGHTS = (0.7, 0.1, 0.1, 0.05, 0.05)
#: Points of the largest-d dataset clustered in exercise clustering-2.
CLUSTERING2_POINTS = 2000
#: Thresholds of the gap rule compared in exercise dp-1.
DP1_RATIOS = (1.2, 3.0)
#: Values of min_points compared in exercise cvi-2.
CVI2_MIN_POINTS = (2, 5, 20)


class _Shape(Exception):
    """The answer does not have the form the exercise asks for (message for the student)."""


@dataclass(frozen=True)
class Result:
    """Outcome of :func:`check`; true when the answer is correct.

    Its text (``str``, or the notebook display) is the message for the student.
    """

    label: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "correct" if self.passed else "not correct yet"
        return f"[{self.label}] {mark}: {self.message}" if self.message else \
            f"[{self.label}] {mark}"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        icon = "✅" if self.passed else "❌"
        return f"{icon} {str(self)}"


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise.

    Attributes
    ----------
    label : str
        The ``{exercise}`` label, ``<prefix>-<n>`` (:data:`PREFIXES`).
    chapter : str
        File stem of the chapter that holds it.
    answer : str
        What ``answer`` must be, e.g. "a number" (shown in check cells and shape errors).
    inputs : dict of str to str
        Keyword given to the reference -> expression of the chapter that gives it.
    reference : callable
        ``reference(**inputs)`` -> the expected answer, recomputed from the chapter's values.
    compare : callable
        ``compare(answer, expected)`` -> ``None`` when correct, else a short reason (no value
        of ``expected`` in it); raises :class:`_Shape` for an answer of the wrong form.
    hint : str
        How to get there, shown with a wrong answer.
    """

    label: str
    chapter: str
    answer: str
    inputs: dict = field(default_factory=dict)
    reference: Callable = None
    compare: Callable = None
    hint: str = ""


# --- answer forms --------------------------------------------------------------------------


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and shape != ():
        return f"{type(value).__name__} of shape {tuple(shape)}"
    if isinstance(value, (str, bytes)):
        return f"the text {value!r}"
    if isinstance(value, (Sequence, Mapping)):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def _as_number(value, what: str = "a single number") -> float:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _Shape(f"expects {what}, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise _Shape(f"expects a finite number, got {value}")
    return value


def number(rtol: float = 0.0, atol: float = 1e-6) -> Callable:
    """Compare a real number with the expected one within ``atol + rtol * |expected|``."""
    def compare(answer, expected):
        value = _as_number(answer)
        if abs(value - expected) > atol + rtol * abs(expected):
            return "the value is off" + (" by more than the tolerance" if atol or rtol else "")
        return None
    return compare


def integer() -> Callable:
    """Compare an integer exactly (``3.0`` counts as 3, ``3.5`` is a shape error)."""
    def compare(answer, expected):
        value = _as_number(answer, "a whole number")
        if value != int(value):
            raise _Shape(f"expects a whole number, got {value}")
        if int(value) != int(expected):
            return "too large" if int(value) > int(expected) else "too small"
        return None
    return compare


def choice(options: Sequence[str]) -> Callable:
    """Compare one of ``options`` (case and surrounding spaces ignored)."""
    def compare(answer, expected):
        if not isinstance(answer, str):
            raise _Shape(f"expects one of {list(options)} (text), got {_describe(answer)}")
        folded = {o.casefold(): o for o in options}
        key = answer.strip().casefold()
        if key not in folded:
            raise _Shape(f"expects one of {list(options)}, got {answer!r}")
        return None if folded[key] == expected else "another option is right"
    return compare


def position(size: int) -> Callable:
    """Compare a ``(row, column)`` pair of integers in ``0 .. size - 1``."""
    def compare(answer, expected):
        if isinstance(answer, (str, bytes)) or not isinstance(answer, (Sequence, np.ndarray)) \
                or len(answer) != 2:
            raise _Shape(f"expects a (row, column) pair, got {_describe(answer)}")
        row, col = (_as_number(v, "whole-number coordinates") for v in answer)
        if not all(v == int(v) and 0 <= v < size for v in (row, col)):
            raise _Shape(f"expects whole-number coordinates in 0 .. {size - 1}, got "
                         f"{tuple(answer)}")
        return None if (int(row), int(col)) == tuple(expected) else "another pixel differs more"
    return compare


def _key(k):
    if isinstance(k, (numbers.Real, np.number)) and not isinstance(k, bool):
        return float(k)
    return str(k)


def mapping(atol: float = 1e-6, rtol: float = 0.0) -> Callable:
    """Compare a mapping (dict or pandas Series) key by key with the expected numbers."""
    def compare(answer, expected):
        if hasattr(answer, "to_dict") and not isinstance(answer, Mapping):
            answer = answer.to_dict()
        if not isinstance(answer, Mapping):
            raise _Shape(f"expects a dict (or pandas Series) with keys {list(expected)}, got "
                         f"{_describe(answer)}")
        given = {_key(k): v for k, v in answer.items()}
        missing = [k for k in expected if _key(k) not in given]
        extra = sorted(set(given) - {_key(k) for k in expected}, key=str)
        if missing or extra:
            raise _Shape(f"expects the keys {list(expected)}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; unexpected {extra}" if extra else ""))
        off = [k for k, v in expected.items()
               if abs(_as_number(given[_key(k)], f"a number for key {k!r}") - v)
               > atol + rtol * abs(v)]
        return f"the values for {off} are off" if off else None
    return compare


# --- reference computations ----------------------------------------------------------------


def _ari_moved(x_labels, y_labels):
    from mnistnd import metrics

    y = np.array(y_labels, copy=True)
    y[-1] = 0
    return metrics.adjusted_rand(x_labels, y)


def _rand_baseline(weights=ARI2_WEIGHTS):
    """Rand index of two independent labellings with class probabilities ``weights``.

    A pair is together in one labelling with probability ``s = sum(p^2)``; the two labellings
    agree on it when both put it together or both apart.
    """
    s = float(np.sum(np.square(weights)))
    return s * s + (1.0 - s) * (1.0 - s)


def _mean_image_gap(X, y, digits=(4, 9)):
    X, y = np.asarray(X), np.asarray(y)
    means = [X[y == k].mean(axis=0) for k in digits]
    side = int(round(np.sqrt(X.shape[1])))
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(means[0] - means[1])),
                                                  (side, side)))


def _always_zero(X):
    return int(np.sum(~np.any(np.asarray(X) != 0, axis=0)))


def _largest_randomness(rows):
    return int(max(rows, key=lambda r: r["ratio"])["latent_dim"])


def _knn_accuracy(data):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return {d: float(cross_val_score(KNeighborsClassifier(), X, y, cv=5).mean())
            for d, (X, y) in data.items()}


def _component_ari(datasets):
    from mnistnd import metrics

    return {d: metrics.adjusted_rand(ad.obs["digit"].to_numpy(), ad.obs["component"].to_numpy())
            for d, ad in datasets.items()}


def _hdbscan_noise(X):
    from mnistnd import clustering

    return float(np.mean(clustering.cluster(np.asarray(X), "hdbscan") == -1))


def _most_sensitive(X, labels):
    from mnistnd import validity

    scores = {"DISCO": [], "DCSI": []}
    for m in CVI2_MIN_POINTS:
        scores["DISCO"].append(validity.disco(X, labels, min_points=m))
        scores["DCSI"].append(validity.dcsi(X, labels, min_pts=m))
    return max(scores, key=lambda k: np.ptp(scores[k]))


def _changed_counts(sweep):
    from mnistnd import embedding

    default = embedding.density_peaks_table(sweep)["n_clear_centres"].to_numpy()
    return {r: float(np.sum(embedding.density_peaks_table(sweep, min_ratio=r)[
        "n_clear_centres"].to_numpy() != default)) for r in DP1_RATIOS}


def _same_digit_in_batch(y, batch_size):
    share = np.bincount(np.asarray(y, dtype=np.int64)) / len(y)
    return float((batch_size - 1) * np.sum(share ** 2))


def _f_measure_true(truth, clusterings):
    from mnistnd import metrics

    return {name: metrics.f_measure(truth, labels, weight_by="true")
            for name, labels in clusterings.items()}


_ENTRIES = [
    Exercise("data-2", "data", "a (row, column) pair of pixel coordinates",
             {"X": "X_train", "y": "y_train"}, _mean_image_gap, position(28),
             "average the training images of each digit, reshape the difference of the two "
             "means to 28 x 28 and locate its largest absolute value (np.unravel_index)"),
    Exercise("data-4", "data", "a whole number (pixel positions)", {"X": "X_train"},
             _always_zero, integer(),
             "a position counts when the pixel is 0 in every row of X_train "
             "((X_train == 0).all(axis=0))"),
    Exercise("mvae-4", "mvae_training", "a latent dimension (whole number)", {"rows": "rows"},
             _largest_randomness, integer(),
             "compare the column 'ratio' of the table: same-image distance over the distance "
             "between different images"),
    Exercise("embedding-2", "embedding_properties", "a dict {d: mean accuracy}",
             {"data": "full"}, _knn_accuracy, mapping(atol=0.005),
             "use KNeighborsClassifier() (5 neighbours) and cross_val_score(..., cv=5) on every "
             "test image of each dataset, and average the five fold scores"),
    Exercise("embedding-4", "embedding_properties", "a dict {d: ARI}",
             {"datasets": "datasets"}, _component_ari, mapping(atol=1e-6),
             "compare obs['digit'] with obs['component'] with the adjusted Rand index "
             "(mnistnd.metrics.adjusted_rand)"),
    Exercise("clustering-2", "clustering_benchmark", "a fraction between 0 and 1",
             {"X": f"sets[max(latent_dims)].X[:{CLUSTERING2_POINTS}]"}, _hdbscan_noise,
             number(atol=1e-9),
             f"cluster the first {CLUSTERING2_POINTS} points of the largest-d dataset with "
             "clustering.cluster(X, 'hdbscan') and take the share of label -1"),
    Exercise("ari-1", "appendix_ari", "a number (the ARI)",
             {"x_labels": "X_labels", "y_labels": "Y_labels"}, _ari_moved, number(atol=1e-6),
             "change only the last entry of Y_labels to 0, recount the contingency table and "
             "apply the formula (or metrics.ari_terms)"),
    Exercise("ari-2", "appendix_ari", "a number (the mean Rand index)", {},
             _rand_baseline, number(atol=0.01),
             f"draw both labellings with rng.choice(len(p), n_random, p=p), p = {ARI2_WEIGHTS}, "
             "and average the Rand index over n_repeats pairs"),
    Exercise("cvi-2", "appendix_cvi", "the name of an index, 'DISCO' or 'DCSI'",
             {"X": "X_toy", "labels": "partitions['true shapes']"}, _most_sensitive,
             choice(("DISCO", "DCSI")),
             f"compute both indices of the true shapes for min_points in {CVI2_MIN_POINTS} and "
             "compare their ranges (max - min)"),
    Exercise("dp-1", "appendix_density_peaks", "a dict {min_ratio: number of graphs}",
             {"sweep": "sweep"}, _changed_counts, mapping(atol=0.0),
             "count the decision graphs whose n_clear_centres differs from the default table "
             f"when density_peaks_table(sweep, min_ratio=r) is used, for r in {DP1_RATIOS}"),
    Exercise("moe-2", "moe_sim_vae", "a number (samples per batch)",
             {"y": "y_train", "batch_size": "batch_size"}, _same_digit_in_batch,
             number(rtol=0.05),
             "for a sample of digit c, each of the other batch_size - 1 samples has digit c with "
             "probability equal to c's share of the training images"),
    Exercise("moe-5", "moe_sim_vae", "a dict {clustering name: F-measure}",
             {"truth": "cell_type", "clusterings": "pbmc_rows"}, _f_measure_true,
             mapping(atol=1e-6),
             "average, over the cell types, each type's best F(c, k) = 2 n_ck / (|c| + |k|), "
             "weighted by the type's size"),
]

#: label -> :class:`Exercise`, for every exercise with a computable answer.
EXERCISES: dict[str, Exercise] = {e.label: e for e in _ENTRIES}


def labels(chapter: str | None = None) -> list[str]:
    """Labels of the checkable exercises (of one chapter, by file stem, when given)."""
    return [e.label for e in _ENTRIES if chapter is None or e.chapter == chapter]


def _exercise(label) -> Exercise:
    if label not in EXERCISES:
        raise ValueError(f"label: {label!r} is not a checkable exercise; known: "
                         f"{', '.join(EXERCISES)}")
    return EXERCISES[label]


def check(label: str, answer, **inputs) -> Result:
    """Check an answer to exercise ``label``; the result says correct, or gives a hint.

    Parameters
    ----------
    label : str
        Exercise label, e.g. ``"ari-1"`` (:data:`EXERCISES`).
    answer
        The student's answer, in the form the exercise asks for (``Exercise.answer``). ``None``
        means "not answered yet".
    **inputs
        The chapter's values the exercise is computed from (``Exercise.inputs``: the student
        edition's check cells pass them).

    Returns
    -------
    Result
        True when correct; its text is the message (never the expected value).

    Raises
    ------
    ValueError
        Unknown label, or inputs missing or unexpected (a mistake in the calling cell, not in
        the answer).
    """
    ex = _exercise(label)
    missing = [k for k in ex.inputs if k not in inputs]
    extra = [k for k in inputs if k not in ex.inputs]
    if missing or extra:
        raise ValueError(f"check({label!r}): needs the inputs {list(ex.inputs) or 'none'}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; unexpected {extra}" if extra else ""))
    if answer is None:
        return Result(label, False, f"no answer yet: set `answer` to {ex.answer}")
    expected = ex.reference(**inputs)
    try:
        reason = ex.compare(answer, expected)
    except _Shape as err:
        return Result(label, False, f"{label} {err} (wanted: {ex.answer})")
    if reason is None:
        return Result(label, True, "")
    return Result(label, False, f"{reason}. Hint: {ex.hint}")


def check_call(label: str, answer: str = "answer") -> str:
    """Source of the call that checks exercise ``label`` inside its chapter."""
    ex = _exercise(label)
    args = "".join(f", {k}={expr}" for k, expr in ex.inputs.items())
    return f"exercises.check({label!r}, {answer}{args})"


def grade(notebook) -> pd.DataFrame:
    """Collect the check results of an executed student notebook.

    Parameters
    ----------
    notebook : path or nbformat notebook
        A chapter of the student edition (``mnistnd classroom``), executed.

    Returns
    -------
    pandas.DataFrame
        One row per check cell: ``label``, ``status`` ("correct", "not correct yet", "error"
        when the cell raised, or "not run" when it has no output) and ``message``.
    """
    import re

    import nbformat
    import pandas as pd

    nb = notebook if hasattr(notebook, "cells") else nbformat.read(notebook, as_version=4)
    rows = []
    for cell in nb.cells:
        label = cell.get("metadata", {}).get("mnistnd_exercise")
        if cell.cell_type != "code" or not label:
            continue
        outputs = cell.get("outputs", [])
        errors = [o for o in outputs if o.get("output_type") == "error"]
        text = "".join(o.get("data", {}).get("text/plain", "") if "data" in o else
                       o.get("text", "") for o in outputs)
        found = re.search(r"\[" + re.escape(label) + r"\] (correct|not correct yet)(?::\s*)?"
                          r"(.*)", text)
        if errors:
            status, message = "error", f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
        elif found:
            status, message = found.group(1), found.group(2).strip()
        else:
            status, message = "not run", ""
        rows.append({"label": label, "status": status, "message": message})
    return pd.DataFrame(rows, columns=["label", "status", "message"])
