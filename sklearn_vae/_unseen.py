"""Labels not seen in fit: the Good–Turing mass a label column reserves for them.

Each label column (not a boolean one) keeps the count of each of its labels
among its observed training entries. Its missing mass ``m = n1 / (n + 1)``,
with ``n1`` the number of labels observed exactly once and ``n`` the number
of observed entries, is Good's estimate ``n1 / n`` of the probability that
the next value is a label not seen in fit, with one more entry in the
denominator so that it stays below 1: a column of distinct labels (an
identifier) still gives each seen label a probability. The column's model is
then a distribution over its seen labels, each with ``1 - m`` times the
probability the estimator gives it, and one more outcome, "a label not seen
in fit", with probability ``m``. The score of a row is the estimator's score
of the row with its unseen labels missing (so their columns are
marginalised), plus ``log(1 - m_j)`` for each seen label and ``log m_j`` for
each unseen one of column ``j``. A column without a label seen once has ``m
= 0``: its seen labels score as they did, and an unseen one ``-inf``.

References
----------
I. J. Good, "The population frequencies of species and the estimation of
population parameters", Biometrika 40, 1953.
"""

from dataclasses import dataclass

import numpy as np

from ._schema import UNSEEN_CODE, validate_table

__all__ = ["UnseenLabels", "count_labels", "encode_scored", "unseen_masses"]


def _has_mass(column):
    """Whether a column reserves mass for unseen labels: labels, not booleans."""
    return column.categories is not None and column.kind != "boolean"


def count_labels(X, columns, previous=None):
    """How often each label of each label column is observed in the encoded ``X``.

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
        Per column an int64 array of one count per category for a label
        column, None for the others; None when no column is a label column.
    """
    if not any(_has_mass(column) for column in columns):
        return None
    counts = []
    for j, column in enumerate(columns):
        if not _has_mass(column):
            counts.append(None)
            continue
        codes = X[:, j]
        codes = codes[~np.isnan(codes)].astype(np.intp)
        count = np.bincount(codes, minlength=len(column.categories)).astype(np.int64)
        if previous is not None and previous[j] is not None:
            count += previous[j]
        counts.append(count)
    return counts


def unseen_masses(counts, columns):
    """The Good–Turing mass ``n1 / (n + 1)`` of each column (0 where it reserves none).

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
        masses[j] = np.count_nonzero(count == 1) / (n + 1)
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
    """The encoded ``X`` to score, its unseen labels missing, and their :class:`UnseenLabels`.

    ``X`` is checked as :func:`~._schema.validate_table` checks it against
    the fitted ``estimator``; a row is refused only when it has no observed
    entry at all (an unseen label is an observed entry). ``counts`` are the
    per-column label counts of fit (see :func:`unseen_masses`).
    """
    schema = estimator.schema_
    X = validate_table(estimator, X, reset=False, unknown="keep")
    coded = schema.label_columns
    if not coded:
        return X, UnseenLabels()
    masses = unseen_masses(counts, schema.columns_)[coded]
    codes = X[:, coded]
    unseen = codes == UNSEEN_CODE
    seen = ~unseen & ~np.isnan(codes)
    # X is the encoding's own array: its unseen labels become missing in place.
    X[:, coded] = np.where(unseen, np.nan, codes)
    with np.errstate(divide="ignore"):
        log_unseen, log_seen = np.log(masses), np.log1p(-masses)
    correction = np.where(seen, log_seen, 0.0).sum(axis=1)
    if unseen.any():
        correction += np.where(unseen, log_unseen, 0.0).sum(axis=1)
    return X, UnseenLabels(correction, np.isnan(X).all(axis=1))
