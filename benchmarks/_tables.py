"""Mixed-type tables with missing entries, and a classifier two-sample test.

Shared by the table benchmark, the imputation benchmark and the gallery. Every
loader returns a fresh ``pandas.DataFrame`` with string columns (pandas'
string dtype), float and int columns, and NaN for missing entries.
"""

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

__all__ = [
    "apply_missing_mask",
    "categorical_columns",
    "classifier_two_sample_auc",
    "load_breast_cancer_table",
    "load_cars_table",
    "load_penguins_table",
    "load_wine_table",
    "make_missing",
]


def load_penguins_table():
    """Palmer penguins, 344 x 8: three string columns, four floats, int ``year``.

    NaN in six columns (two rows with no measurements, eleven without ``sex``).
    """
    from palmerpenguins import load_penguins

    return load_penguins().reset_index(drop=True)


def load_cars_table():
    """Auto-mpg (``vega_datasets.local_data.cars()``), 406 x 8.

    ``Name`` is dropped (an identifier, nearly unique per row) and ``Year``
    (a datetime) becomes an int64 column of calendar years. ``Origin`` is a
    string column; ``Miles_per_Gallon`` and ``Horsepower`` have NaN.
    """
    from vega_datasets import local_data

    df = local_data.cars().drop(columns="Name")
    df["Year"] = df["Year"].dt.year.astype("int64")
    return df.reset_index(drop=True)


def make_missing(df, fraction, random_state):
    """A copy of ``df`` with ``fraction`` of all entries set to NaN, completely at random.

    Each entry is removed independently with probability ``fraction`` (MCAR),
    in every column, labels included. Int columns that receive NaN become
    float columns; string columns keep their dtype.
    """
    rng = np.random.default_rng(random_state)
    mask = rng.random(df.shape) < fraction
    return df.mask(mask)


def _labelled_table(loader, missing, random_state):
    bunch = loader(as_frame=True)
    df = bunch.data.astype("float64").reset_index(drop=True)
    names = np.array([f"class_{k}" for k in range(len(bunch.target_names))])
    df["label"] = pd.Series(names[bunch.target.to_numpy()], dtype="str")
    if missing:
        df = make_missing(df, missing, random_state)
    return df


def load_wine_table(missing=0.2, random_state=0):
    """``load_wine`` as a mixed table, 178 x 14: 13 float features, a string ``label``.

    The label is ``"class_0"``, ``"class_1"`` or ``"class_2"``. Then a
    ``missing`` fraction of all entries (label included) is removed completely
    at random with ``make_missing(df, missing, random_state)``.
    """
    return _labelled_table(load_wine, missing, random_state)


def load_breast_cancer_table(missing=0.2, random_state=0):
    """``load_breast_cancer`` as a mixed table, 569 x 31: 30 floats, a string ``label``.

    Labels ``"class_0"`` (malignant) and ``"class_1"`` (benign); then
    ``missing`` of all entries removed at random, as for ``load_wine_table``.
    """
    return _labelled_table(load_breast_cancer, missing, random_state)


def categorical_columns(df):
    """Names of the columns that are not numeric (strings, categories, bools, objects)."""
    return [
        column
        for column in df.columns
        if not pd.api.types.is_numeric_dtype(df[column]) or pd.api.types.is_bool_dtype(df[column])
    ]


def apply_missing_mask(synthetic, real):
    """``synthetic`` with NaN exactly where ``real`` has NaN, row by row.

    Both must have the same shape and columns; the result has ``real``'s index.
    Used so that a two-sample test compares the distribution of the observed
    entries and not the missingness pattern (a model of the observed entries
    samples complete rows).
    """
    synthetic = synthetic[list(real.columns)].set_axis(real.index, axis=0)
    return synthetic.mask(real.isna().to_numpy())


def _as_classifier_input(real, synthetic):
    """Stack ``real`` over ``synthetic``; non-numeric columns become one shared category."""
    columns = list(real.columns)
    categorical = set(categorical_columns(real)) | set(categorical_columns(synthetic[columns]))
    parts = []
    for frame in (real, synthetic):
        frame = frame[columns].reset_index(drop=True).copy()
        for column in columns:
            if column in categorical:
                frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
                frame[column] = frame[column].map(lambda v: None if v is None else str(v))
            else:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        parts.append(frame)
    X = pd.concat(parts, ignore_index=True)
    for column in categorical:
        categories = sorted(X[column].dropna().unique())
        X[column] = pd.Categorical(X[column], categories=categories)
    y = np.r_[np.zeros(len(real), dtype=int), np.ones(len(synthetic), dtype=int)]
    return X, y


def classifier_two_sample_auc(real, synthetic, random_state):
    """Cross-validated ROC AUC of a classifier telling ``real`` rows from ``synthetic`` rows.

    ``real`` (label 0) and ``synthetic`` (label 1) are DataFrames with the same
    columns. Non-numeric columns are cast to ``category`` with the union of
    both sources' values, so both use the same codes; NaN stays NaN (handled
    natively by the classifier). The classifier is
    ``HistGradientBoostingClassifier(categorical_features="from_dtype")``,
    scored by 5-fold ``StratifiedKFold(shuffle=True)`` ROC AUC, both seeded
    with ``random_state``. Returns the mean AUC over folds: 0.5 means the
    classifier cannot tell the sources apart, 1.0 that it always can.
    """
    X, y = _as_classifier_input(real, synthetic)
    classifier = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=random_state
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=random_state)
    return float(np.mean(cross_val_score(classifier, X, y, scoring="roc_auc", cv=cv)))
