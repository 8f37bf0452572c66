"""Values not seen in fit: the Good–Turing mass a column reserves for them.

Two kinds of columns reserve it: label columns (not boolean ones), for
labels not seen in fit, and columns modelled by a categorical over their
own integer levels (:func:`~._rules.has_levels`), for values outside them.
Each keeps the count of each of its labels or levels among its observed
training entries. Its missing mass ``m = max(n1, 1) / (n + 1)``, with
``n1`` the number of labels (levels) observed exactly once and ``n`` the
number of observed entries, is Good's estimate ``n1 / n`` of the probability
that the next value is one not seen in fit, with one more entry in the
denominator so that it stays below 1 (a column of distinct labels, an
identifier, still gives each seen label a probability), and at least one
label counted as seen once, so that a column without one still gives an
unseen value a probability: about ``1 / n``, the rule of three's order of
magnitude for an event not seen in ``n`` trials.

The column's model is then a distribution over its seen labels (levels),
each with ``1 - m`` times the probability the estimator gives it, and the
values not seen in fit, with probability ``m`` in all. The score of a row is
the estimator's score of the row with its unseen values missing (so their
columns are marginalised), plus ``log(1 - m_j)`` for each seen value and, for
each unseen one of column ``j``:

- a label: ``log m_j``, the probability of "a label not seen in fit";
- an integer ``k`` levels below the lowest level or above the highest (a
  value between two integers counts as the integer below it, in the units
  of the levels, unit bins): ``log(m_j / 2) - k log 2``, geometric tails
  that give each side half the mass and halve it with each step away, a
  proper distribution over all integers.

References
----------
I. J. Good, "The population frequencies of species and the estimation of
population parameters", Biometrika 40, 1953.
"""

from dataclasses import dataclass

import numpy as np

from ._rules import has_levels
from ._schema import UNSEEN_CODE, validate_table

__all__ = ["UnseenLabels", "count_labels", "encode_scored", "unseen_masses"]

_LOG2 = np.log(2.0)


def _has_mass(column):
    """Whether a column reserves mass for unseen values: labels (not booleans), levels."""
    return (column.categories is not None and column.kind != "boolean") or has_levels(column)


def _n_values(column):
    """How many labels or integer levels a column with mass counts."""
    if column.categories is not None:
        return len(column.categories)
    return int(column.high - column.low) + 1


def _level_codes(column, values):
    """The level (0 for ``low``) of each value of an integer-levels column; float64."""
    return np.floor(values) - column.low


def count_labels(X, columns, previous=None):
    """How often each label (level) of each column with mass is observed in the encoded ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns)
        Encoded training data: label codes, NaN where missing.
    columns : list of ColumnSpec
        The schema's columns.
    previous : list or None, default=None
        Counts of earlier training data (``partial_fit``), added to.

    Returns
    -------
    counts : list or None
        Per column an int64 array of one count per category of a label
        column or per level of an integer-levels column, None for the
        others; None when no column has either.
    """
    if not any(_has_mass(column) for column in columns):
        return None
    counts = []
    for j, column in enumerate(columns):
        if not _has_mass(column):
            counts.append(None)
            continue
        codes = X[:, j]
        codes = codes[~np.isnan(codes)]
        size = _n_values(column)
        if column.categories is None:
            # Training values beyond the levels (a later partial_fit) are not counted.
            codes = _level_codes(column, codes)
            codes = codes[(codes >= 0) & (codes < size)]
        count = np.bincount(codes.astype(np.intp), minlength=size).astype(np.int64)
        if previous is not None and previous[j] is not None:
            count += previous[j]
        counts.append(count)
    return counts


def unseen_masses(counts, columns):
    """The Good–Turing mass ``max(n1, 1) / (n + 1)`` of each column (0 where it reserves none).

    ``counts`` holds per column the counts of its labels (the counts of
    :func:`count_labels`, or a histogram's per-category counts), or is None
    (a model saved before the counts were kept: no mass).
    """
    masses = np.zeros(len(columns))
    if counts is None:
        return masses
    for j, column in enumerate(columns):
        count = counts[j]
        if not _has_mass(column) or count is None:
            continue
        n = int(count.sum())
        masses[j] = max(np.count_nonzero(count == 1), 1) / (n + 1)
    return masses


@dataclass(frozen=True)
class UnseenLabels:
    """What the seen and unseen labels of the rows to score add to their scores.

    Attributes
    ----------
    correction : ndarray of shape (n_samples,) or None
        Per row, the sum over label columns of ``log(1 - m_j)`` where the
        label was seen in fit and ``log m_j`` where it was not; None for a
        table without label columns (nothing to add).
    blank : ndarray of bool of shape (n_samples,) or None
        The rows whose observed entries are all unseen labels: the
        estimator has nothing of them to score (its marginal of no column
        is 1).
    """

    correction: np.ndarray | None = None
    blank: np.ndarray | None = None

    def scores(self, score, X, *args):
        """``score(X, *args)``, the estimator's scores of encoded rows, plus the correction.

        ``score`` is not called on the blank rows, whose score is the
        correction alone; on the other rows it is called once, with every
        row when none is blank.
        """
        if self.correction is None:
            return score(X, *args)
        if not self.blank.any():
            return score(X, *args) + self.correction
        scores = np.zeros(len(X))
        rows = ~self.blank
        if rows.any():
            scores[rows] = score(X[rows], *args)
        return scores + self.correction


def encode_scored(estimator, X, counts):
    """The encoded ``X`` to score, its unseen values missing, and their :class:`UnseenLabels`.

    ``X`` is checked as :func:`~._schema.validate_table` checks it against
    the fitted ``estimator``; a row is refused only when it has no observed
    entry at all (an unseen label is an observed entry). ``counts`` are the
    per-column counts of fit (see :func:`unseen_masses`).
    """
    schema = estimator.schema_
    X = validate_table(estimator, X, reset=False, unknown="keep")
    coded = schema.label_columns
    leveled = [j for j, column in enumerate(schema.columns_) if has_levels(column)]
    if not coded and not leveled:
        return X, UnseenLabels()
    masses = unseen_masses(counts, schema.columns_)
    correction = np.zeros(len(X))
    if coded:
        # X is the encoding's own array of a table: its unseen labels become missing in place.
        X, terms = _unseen_labels(X, coded, masses[coded])
        correction += terms
    if leveled:
        X, terms = _beyond_levels(X, [schema.columns_[j] for j in leveled], leveled, masses)
        correction += terms
    return X, UnseenLabels(correction, np.isnan(X).all(axis=1))


def _log_masses(masses):
    with np.errstate(divide="ignore"):
        return np.log(masses), np.log1p(-masses)


def _unseen_labels(X, coded, masses):
    """``X`` with the unseen labels of columns ``coded`` missing, and each row's terms."""
    codes = X[:, coded]
    unseen = codes == UNSEEN_CODE
    seen = ~unseen & ~np.isnan(codes)
    X[:, coded] = np.where(unseen, np.nan, codes)
    log_unseen, log_seen = _log_masses(masses)
    terms = np.where(seen, log_seen, 0.0).sum(axis=1)
    if unseen.any():
        terms += np.where(unseen, log_unseen, 0.0).sum(axis=1)
    return X, terms


def _beyond_levels(X, columns, positions, masses):
    """``X`` with the values beyond the integer levels missing, and each row's terms."""
    values = np.asarray(X[:, positions], dtype=np.float64)
    low = np.array([column.low for column in columns], dtype=np.float64)
    high = np.array([column.high for column in columns], dtype=np.float64)
    level = np.floor(values)
    with np.errstate(invalid="ignore"):
        steps = np.where(level < low, low - level, np.where(level > high, level - high, 0.0))
    beyond = steps > 0
    seen = ~beyond & ~np.isnan(values)
    log_unseen, log_seen = _log_masses(masses[positions])
    terms = np.where(seen, log_seen, 0.0).sum(axis=1)
    if beyond.any():
        # Geometric tails: half the mass on each side, halved at each step away.
        tail = log_unseen - _LOG2 - steps * _LOG2
        terms += np.where(beyond, tail, 0.0).sum(axis=1)
        # A copy: an array passes validation as the caller's own.
        X = np.array(X)
        X[:, positions] = np.where(beyond, np.nan, values)
    return X, terms
