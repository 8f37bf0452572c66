"""Object columns that are not plain labels, and messages that quote huge user values.

Any hashable value is a label: tuples, bytes and frozensets fit, score and
sample back as themselves. An unhashable value (a list, dict, set or array in
a cell) is refused with a ``ValueError`` that names the column, the row and
the type and says what to do. A column mixing strings, numbers and booleans is
refused (``1`` and ``"1"`` would be two labels that print alike); other
hashable values may mix. Every message quotes user values cut to a readable
length, and lists only a handful of them.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_vae import HistogramDensity, VAEImputer, VAETransformer
from sklearn_vae._checks import short_list, short_repr

N_ROWS = 24


def _vae():
    return VAETransformer(n_components=1, hidden_layer_sizes=(2,), max_iter=1, random_state=0)


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of one epoch
        return estimator.fit(X)


def _table(values, name="odd"):
    column = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):  # each value one cell, tuples not unpacked
        column[row] = value
    return pd.DataFrame({"x": np.linspace(0.0, 1.0, len(values)), name: column})


LABELS = {
    "tuples": [(1, "a"), (2, "b"), (1, "a"), ("c",)],
    "bytes": [b"ab", b"\x00\xff", b"ab", b""],
    "frozensets": [frozenset({1}), frozenset(), frozenset({1, 2}), frozenset()],
    "bytes and tuples": [b"ab", (1, 2), b"ab", (1, 2)],
    "unordered tuples": [(1, "a"), ("b", 2), (1, "a"), ("b", 2)],  # 1 < "b" is a TypeError
}


# --------------------------------------------------------------- hashable labels


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("estimator", [_vae(), HistogramDensity()], ids=["vae", "histogram"])
def test_hashable_labels_fit_score_and_sample_back_as_themselves(kind, estimator):
    df = _table(LABELS[kind] * (N_ROWS // 4))
    fitted = _fit(estimator, df)
    categories = fitted.schema_.columns_[1].categories
    assert categories.shape == (len(set(LABELS[kind])),) and set(categories) == set(LABELS[kind])
    assert np.isfinite(fitted.score_samples(df)).all()
    samples = fitted.sample(50, random_state=0)
    assert samples["odd"].dtype == object
    assert set(samples["odd"]) <= set(LABELS[kind])
    assert all(type(value) in {type(label) for label in LABELS[kind]} for value in samples["odd"])


def test_tuple_labels_can_be_given_and_imputed_in_a_dataframe():
    df = _table(LABELS["tuples"] * (N_ROWS // 4))
    vae = _fit(_vae(), df)
    conditional = vae.sample(3, random_state=0, given={"odd": (2, "b")}, n_importance_samples=5)
    assert conditional["odd"].tolist() == [(2, "b")] * 3
    holes = df.copy()
    holes.loc[[1, 5], "odd"] = None
    imputer = _fit(VAEImputer(_vae(), n_estimators=1, n_importance_samples=5, random_state=0), df)
    filled = imputer.transform(holes)["odd"]
    assert filled.notna().all() and set(filled) <= set(LABELS["tuples"])
    assert filled.drop([1, 5]).tolist() == df["odd"].drop([1, 5]).tolist()
    # A numeric array cannot hold labels: the DataFrame can.
    with pytest.raises(ValueError, match="An array must be numeric; pass a pandas DataFrame"):
        _vae().fit(df.to_numpy())


def test_an_unknown_tuple_is_named_like_any_unknown_label():
    vae = _fit(_vae(), _table(LABELS["tuples"] * 2))
    message = "Column 'odd' holds (9, 9) (row 0), a category not seen in fit (3 categories: "
    with pytest.raises(ValueError, match=re.escape(message)):
        vae.sample(1, given={"odd": (9, 9)})
    assert np.isfinite(vae.transform(_table([(1, "a"), (9, 9)]))).all()  # missing in transform
    # No label was seen once: m = 1 / (n + 1), and the batch's other row is scored.
    scores = vae.score_samples(_table([(1, "a"), (9, 9)]))
    assert np.isfinite(scores).all()


# ------------------------------------------------------------ unhashable values


@pytest.mark.parametrize(
    "value, type_name",
    [([1, 2], "list"), ({"a": 1}, "dict"), ({1}, "set"), (np.arange(2), "ndarray")],
)
@pytest.mark.parametrize("estimator", [_vae(), HistogramDensity()], ids=["vae", "histogram"])
def test_an_unhashable_cell_is_refused_with_its_column_row_and_type(value, type_name, estimator):
    df = _table(["a", None, "b", value, "a"])
    message = (
        f"Column 'odd' holds a value of type '{type_name}' in row 3 ({short_repr(value)}), "
        "which cannot be a label: labels must be hashable. Convert its values to strings "
        "(.astype(str)) or to tuples (.map(tuple)), or drop the column."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        estimator.fit(df)


@pytest.mark.parametrize("method", ["score_samples", "transform"])
def test_an_unhashable_cell_after_fit_is_refused_with_its_column_and_row(method):
    vae = _fit(_vae(), _table(LABELS["tuples"]))
    message = "Column 'odd' holds a value of type 'list' in row 2 ([1, 'a']), which cannot be"
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(vae, method)(_table([(1, "a"), (2, "b"), [1, "a"]]))


def test_a_type_error_that_is_not_about_hashing_is_not_disguised():
    from sklearn_vae._schema import _label_codes

    class Broken:
        def __hash__(self):
            raise TypeError("broken on purpose")

    column = _fit(_vae(), _table(["a", "b"])).schema_.columns_[1]
    with pytest.raises(ValueError, match="holds a value of type 'Broken' in row 1"):
        _label_codes(column, np.array(["a", Broken()], dtype=object))


# ------------------------------------------------------------------ mixed types


@pytest.mark.parametrize(
    "values, first, second",
    [
        ([1, "1", 2], "numbers", "strings"),
        (["a", True, "b"], "strings", "booleans"),
        (["a", b"a", "b"], "strings", "other objects"),
        ([(1,), "a"], "other objects", "strings"),
    ],
)
def test_a_column_mixing_strings_numbers_and_booleans_is_refused(values, first, second):
    with pytest.raises(ValueError, match=f"^Column 'odd' mixes {first} and {second} "):
        _vae().fit(_table(values))


def test_missing_entries_of_any_kind_do_not_count_as_a_second_type():
    df = _table(["a", None, "b", float("nan"), pd.NA, "a"])
    vae = _fit(_vae(), df)
    assert list(vae.schema_.columns_[1].categories) == ["a", "b"]
    assert set(vae.sample(20, random_state=0, missing=False)["odd"]) <= {"a", "b"}


# -------------------------------------------------------------------- property

CELLS = {
    "str": st.text("ab", max_size=2),
    "int": st.integers(-2, 2),
    "tuple": st.tuples(st.integers(0, 1), st.text("a", max_size=1)),
    "bytes": st.binary(max_size=2),
    "None": st.none(),
    "nan": st.just(float("nan")),
}


@st.composite
def object_columns(draw):
    """Cells of one to three of the kinds above (one type is common), and a list in some."""
    kinds = draw(st.sets(st.sampled_from(sorted(CELLS)), min_size=1, max_size=3))
    cells = st.one_of([CELLS[kind] for kind in sorted(kinds)])
    values = draw(st.lists(cells, min_size=2, max_size=12))
    if draw(st.integers(0, 3)) == 3:  # an unhashable cell
        values.insert(draw(st.integers(0, len(values))), draw(st.lists(st.integers(0, 1))))
    return values


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(values=object_columns())
def test_random_object_columns_work_or_raise_the_librarys_error_naming_the_column(values):
    df = _table(values)
    for estimator in (_vae(), HistogramDensity()):
        try:
            fitted = _fit(estimator, df)
        except ValueError as error:
            assert str(error).startswith("Column 'odd' "), str(error)
            continue
        assert np.isfinite(fitted.score_samples(df)).all()
        samples = fitted.sample(5, random_state=0)
        assert samples["odd"].dtype == df["odd"].dtype
        observed = [value for value in values if not pd.isna(value)]
        assert all(sample in observed for sample in samples["odd"].dropna())


# -------------------------------------------------------------------- messages


def test_short_repr_cuts_long_values_and_short_list_shows_a_handful():
    assert short_repr("abc") == "'abc'"
    assert short_repr("a" * 78) == repr("a" * 78)  # 80 characters: kept whole
    assert short_repr("a" * 79) == "'" + "a" * 76 + "..."
    assert len(short_repr("a" * 200_000, limit=60)) == 60
    assert short_list(["x", 1, (2, 3)]) == "['x', 1, (2, 3)]"
    assert short_list(range(6)) == "[0, 1, 2, 3, 4, 5]".replace(", 5", ", ...")
    assert short_list(range(5)) == "[0, 1, 2, 3, 4]"
    assert short_list(iter(["a" * 100]), count=3, limit=10) == "['aaaaaa...]"


HUGE_LABEL = "L" * 200_000
LONG_NAME = "n" * 10_000


def test_an_unknown_label_of_200000_characters_gives_a_short_message():
    # A later chunk of partial_fit cannot bring a label: its message quotes the label and
    # at most five of the 7 labels of fit, each cut short.
    labels = [f"{k}{HUGE_LABEL}" for k in range(7)]
    vae = _vae().partial_fit(_table(labels * 2))
    with pytest.raises(ValueError) as error:
        vae.partial_fit(_table([labels[0], HUGE_LABEL]))
    assert len(str(error.value)) < 800
    assert "Column 'odd' holds 'LLLL" in str(error.value) and "(7 categories: ['0LLL" in str(
        error.value
    )
    assert str(error.value).count("L...") == 6  # the label and five of the categories, cut


def test_a_huge_label_in_a_numeric_array_gives_a_short_message():
    with pytest.raises(ValueError, match="An array must be numeric") as error:
        _vae().fit(np.array([[1.0], [HUGE_LABEL]], dtype=object))
    assert len(str(error.value)) < 600
    assert str(error.value).startswith("could not convert string to float: 'LLL")


@pytest.mark.parametrize(
    "values, start",
    [
        (["a", 1], "mixes strings and numbers"),
        ([None, None], "is missing in every training row"),
        ([[1], "a"], "holds a value of type 'list' in row 0"),
        ([pd.Period("2020-01", "M"), pd.Period("2020-02", "M")], "has dtype"),
    ],
)
def test_a_column_named_with_10000_characters_is_quoted_short(values, start):
    df = pd.DataFrame({"x": [1.0, 2.0], LONG_NAME: pd.Series(values, dtype=None)})
    with pytest.raises((ValueError, TypeError)) as error:
        _vae().fit(df)
    message = str(error.value)
    assert len(message) < 600 and f"Column {short_repr(LONG_NAME)} {start}" in message


def test_long_names_and_labels_are_cut_in_the_other_messages():
    df = pd.DataFrame({LONG_NAME: ["a", "b", "a"], "x": [1.0, 2.0, 3.0]})
    numbers, infinite = df.assign(**{LONG_NAME: [1.0, 2.0, 3.0]}), [1.0, np.inf, 2.0]
    messages = []
    for action in (
        lambda: _vae().set_params(likelihood={HUGE_LABEL: "gaussian"}).fit(df),
        lambda: _vae().set_params(likelihood={LONG_NAME: HUGE_LABEL}).fit(df),
        lambda: _vae().set_params(likelihood={LONG_NAME: "poisson"}).fit(df),
        lambda: _fit(_vae(), df).sample(1, given={HUGE_LABEL: 1.0}),
        lambda: _fit(_vae(), numbers).score_samples(numbers.assign(**{LONG_NAME: infinite})),
        lambda: _fit(_vae(), df.assign(x=[1, 2, 3])).score_samples(df.assign(x=[HUGE_LABEL] * 3)),
    ):
        with pytest.raises(ValueError) as error:
            action()
        messages.append(str(error.value))
    assert all(len(message) < 600 for message in messages), [len(m) for m in messages]
    assert all("..." in message for message in messages), messages
    with pytest.raises(
        ValueError, match=f"^Column {re.escape(short_repr(LONG_NAME))} holds"
    ) as error:
        HistogramDensity().fit(pd.DataFrame({LONG_NAME: [0, 2**60]}))
    assert len(str(error.value)) < 600
    many = pd.DataFrame({f"c{j}": [1.0, 2.0] for j in range(1000)})
    with pytest.raises(ValueError) as error:
        _vae().set_params(likelihood={"absent": "gaussian"}).fit(many)
    assert len(str(error.value)) < 600 and "'c9', ...]" in str(error.value)
