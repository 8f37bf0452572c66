"""Observation models p(x | z): one class per distribution family."""

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal, Poisson

from ._checks import check_integer_valued, short_list, short_repr
from ._data import iter_row_chunks, summarise_columns
from ._random import draw

__all__ = [
    "Likelihood",
    "GaussianLikelihood",
    "BernoulliLikelihood",
    "CategoricalLikelihood",
    "PoissonLikelihood",
    "PointMassLikelihood",
    "LIKELIHOODS",
    "TableLikelihood",
    "make_likelihood",
    "one_hot_columns",
    "point_masses",
]

# Floor on the Gaussian decoder's scale, in standardised units: a variance
# floor of 1e-6, the same as GaussianMixture's default ``reg_covar``.
MIN_SCALE = 1e-3


class Likelihood(nn.Module):
    """Base class of the decoder's observation model p(x | z).

    A likelihood owns everything that depends on the distribution family:
    which values of ``X`` it supports, the statistics it learns from the
    training data (stored as buffers so they travel with the module), the
    output layer of the decoder, and the map between the units of ``X`` and
    the units in which the ``torch.distributions`` object is defined.

    Features are independent given z, so a missing entry (NaN) is
    marginalised exactly by leaving its term out of :meth:`log_prob`.

    Adding a likelihood means subclassing this class and registering it in
    :data:`LIKELIHOODS`; nothing else in the library changes.

    Parameters
    ----------
    n_features : int
        Number of features (columns) it models.
    column_names : list, default=None
        How error messages name the columns (positions when None).
    """

    #: Name used for the ``likelihood`` parameter of the estimators.
    name = None

    def __init__(self, n_features, column_names=None):
        super().__init__()
        self.n_features = n_features
        self.column_names = list(range(n_features)) if column_names is None else column_names

    def check_support(self, X, summary=None):
        """Raise ``ValueError`` if ``X`` has values outside the support.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated input data; NaN marks a missing entry. Read only to
            name the offending entry when ``summary`` shows one.
        summary : ColumnSummary, default=None
            The summary of ``X`` (:func:`~._data.summarise_columns`), which
            decides; computed from ``X`` when None.
        """

    def fit(self, summary):
        """Learn what the model needs of the training data (for example its levels).

        Parameters
        ----------
        summary : ColumnSummary
            The :func:`~._data.summarise_columns` of the training data, in
            its own units, already checked with :meth:`check_support`.

        Returns
        -------
        self : Likelihood
        """
        return self

    def make_head(self, n_inputs, heteroscedastic):
        """Return the decoder's output layer, mapping hidden units to parameters.

        Parameters
        ----------
        n_inputs : int
            Width of the last hidden layer (the latent size when the decoder
            has no hidden layer).
        heteroscedastic : bool
            Whether dispersion parameters, where the family has any, may depend
            on ``z`` (True) or are one learned value per feature (False).

        Returns
        -------
        head : torch.nn.Module
        """
        raise NotImplementedError

    def distribution(self, params):
        """Distribution over the model-space target, batch shape ``(..., n_features)``."""
        raise NotImplementedError

    def to_target(self, x):
        """Map a float32 batch in the units of ``X`` to the model space (NaN: not scored)."""
        return x

    def from_target(self, t):
        """Map model-space values back to the units of ``X``."""
        return t

    def mean(self, params):
        """Mean of p(x | z) in the units of ``X``."""
        return self.from_target(self.distribution(params).mean)

    def entry_log_prob(self, params, target):
        """Per-entry log-probability of model-space ``target``, shape ``(..., n_features)``."""
        return self.distribution(params).log_prob(target)

    def log_prob(self, params, x):
        """Log-density of the observed entries of ``x`` under p(x | z), in nats.

        ``x`` is in the module's units (Gaussian columns standardised by the
        estimator, whose float64 log-Jacobian it adds to the scores); NaN
        entries are missing and left out, which marginalises them exactly, as
        are the entries :meth:`to_target` maps to NaN.
        """
        target = self.to_target(x)
        missing = torch.isnan(target)
        if not missing.any():
            return self.entry_log_prob(params, target).sum(-1)
        # A finite stand-in keeps NaN out of the gradients; its term is dropped.
        target = torch.where(missing, 0.0, target)
        return torch.where(missing, 0.0, self.entry_log_prob(params, target)).sum(-1)

    def sample(self, params):
        """Draw ``x ~ p(x | z)`` in the units of ``X``, from the seeded section's generator.

        An entry whose parameters are not finite is drawn as NaN
        (:func:`~._random.draw`).
        """
        return self.from_target(draw(self.distribution(params)))

    def _columns_note(self):
        """`` (columns [...])`` when the columns have names, for messages."""
        if self.column_names == list(range(self.n_features)):
            return ""
        return f" (columns {short_list(self.column_names)})"

    def _entry(self, row, col):
        """How messages name the entry at (row, col)."""
        return f"X[{row}, {short_repr(self.column_names[col])}]"


class _PerFeature(nn.Module):
    """A learned vector, one value per feature, that ignores its input."""

    def __init__(self, n_features):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(n_features))

    def forward(self, h):
        return self.value.expand(*h.shape[:-1], -1)


class _GaussianHead(nn.Module):
    """Output layer giving a location and an unconstrained scale per feature."""

    def __init__(self, n_inputs, n_features, heteroscedastic):
        super().__init__()
        self.loc = nn.Linear(n_inputs, n_features)
        self.raw_scale = (
            nn.Linear(n_inputs, n_features) if heteroscedastic else _PerFeature(n_features)
        )

    def forward(self, h):
        return self.loc(h), self.raw_scale(h)


class GaussianLikelihood(Likelihood):
    """Diagonal Gaussian p(x | z) of standardised values, with a learned, floored variance.

    The estimator standardises these columns in float64 before they reach
    the model (with the training mean and standard deviation; constant
    features keep a unit scale, as in ``StandardScaler``) and adds the
    log-Jacobian of that map to the scores, so scores are log-densities of
    ``X`` in its own units at any magnitude. The model itself works in
    standardised units: the decoder outputs a mean and a scale per feature;
    the scale is ``softplus(.) + 1e-3``, a variance floor of 1e-6 that keeps
    constant features from sending the density to infinity.
    """

    name = "gaussian"

    def make_head(self, n_inputs, heteroscedastic):
        return _GaussianHead(n_inputs, self.n_features, heteroscedastic)

    def distribution(self, params):
        loc, raw_scale = params
        scale = nn.functional.softplus(raw_scale) + MIN_SCALE
        return Normal(loc, scale, validate_args=False)


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli p(x | z) for data in [0, 1].

    For binary data the score is a log-probability. Values strictly between
    0 and 1 are accepted (the loss is then the binary cross-entropy, as for
    grey-level images), but the score is no longer a normalised density.
    """

    name = "bernoulli"

    def check_support(self, X, summary=None):
        summary = summarise_columns(X) if summary is None else summary
        observed = summary.n_observed > 0
        if not observed.any():
            return
        low, high = summary.low[observed].min(), summary.high[observed].max()
        if low < 0 or high > 1:
            raise ValueError(
                f"likelihood='bernoulli' requires X in [0, 1]{self._columns_note()}; got values in "
                f"[{low:.4g}, {high:.4g}]. Rescale X (for example with "
                "MinMaxScaler) or use likelihood='gaussian'."
            )

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, self.n_features)

    def distribution(self, params):
        return Bernoulli(logits=params, validate_args=False)


# More levels than this would make the decoder's output layer impractically wide.
MAX_LEVELS = 1024


def _check_integer_valued(summary, likelihood, names=None):
    check_integer_valued(
        None,
        f"likelihood={likelihood.name!r}",
        "Round or bin X first, or use likelihood='gaussian'.",
        names=likelihood.column_names if names is None else names,
        summary=summary,
    )


class CategoricalLikelihood(Likelihood):
    """Independent categorical p(x | z): one ``Categorical`` per feature over its levels.

    Two kinds of levels, fixed in ``fit``:

    - shared (``likelihood="categorical"`` for a whole numeric matrix): the
      integers from the smallest to the largest value in ``X``, shared by all
      features (for pixel intensities 0..16, 17 levels), so a level that one
      feature never took still gets a learned probability. The point
      estimate (:meth:`mean`) is the expected level.
    - per feature (columns of a table): the integers from each feature's own
      minimum to its maximum, or, for label columns, the category codes
      ``0..n_categories - 1`` given by ``n_categories``. The point estimate is
      the most probable level, so labels and integers decode exactly.

    Scores are log-probabilities (nats, <= 0). For integer data they equal the
    log-density of the same model on data dequantised with U(0, 1) noise, so
    they compare directly with continuous models scored on ``dequantize(X)``.
    Shared levels cannot score non-integer values, nor values outside the
    fitted levels: they raise ``ValueError``. A feature's own integer levels
    are unit bins: a value scores as the integer below it, and one outside
    the levels is left out here (its term is 0), for the estimator to score
    by the tails of :mod:`._unseen`.

    Parameters
    ----------
    n_features : int
    column_names : list, default=None
    shared_levels : bool, default=True
    n_categories : list of int or None, default=None
        Per feature, a known number of category codes (label columns), or
        None to take the feature's integer range from the data.
    """

    name = "categorical"

    def __init__(self, n_features, column_names=None, *, shared_levels=True, n_categories=None):
        super().__init__(n_features, column_names)
        self.shared_levels = shared_levels
        self.n_categories = [None] * n_features if n_categories is None else list(n_categories)
        self.register_buffer("offsets", torch.zeros(n_features))
        # Zero until fit: the levels are not known yet.
        self.register_buffer("n_levels", torch.zeros(n_features, dtype=torch.long))
        # A feature's own integer levels are unit bins (derived, so not saved).
        binned = [not shared_levels and k is None for k in self.n_categories]
        self.register_buffer("binned", torch.tensor(binned, dtype=torch.bool), persistent=False)

    @property
    def levels(self):
        """The shared levels (shared mode), as float32 values."""
        return torch.arange(int(self.n_levels[0]), device=self.offsets.device) + self.offsets[0]

    def check_support(self, X, summary=None):
        summary = summarise_columns(X) if summary is None else summary
        # Unit bins score every value: only the other features are checked.
        checked = np.flatnonzero(~self.binned.cpu().numpy())
        if not len(checked):
            return
        names = [self.column_names[j] for j in checked]
        X, summary = _ColumnSubset(X, checked), summary.select(checked)
        _check_integer_valued(summary, self, names)
        if not self.n_levels.any():
            return
        low = self.offsets.double().cpu().numpy()[checked]
        high = low + self.n_levels.double().cpu().numpy()[checked] - 1
        observed = summary.n_observed > 0
        if not ((summary.low < low) | (summary.high > high))[observed].any():
            return
        # Only an error reads X again, to name the first entry outside the levels.
        for start, chunk in iter_row_chunks(X):
            with np.errstate(invalid="ignore"):
                outside = (chunk < low) | (chunk > high)
            if not outside.any():
                continue
            row, col = np.argwhere(outside)[0]
            raise ValueError(
                f"X[{row + start}, {short_repr(names[col])}] = {chunk[row, col]:g} is outside "
                f"the levels seen in fit ({low[col]:g} to {high[col]:g}); "
                "likelihood='categorical' gives it no probability. Refit on data that covers "
                "every level."
            )

    def fit(self, summary):
        low, high = summary.low.copy(), summary.high.copy()
        known = np.array([k is not None for k in self.n_categories])
        if self.shared_levels and not known.all():
            # One range for the numeric features: the matrix meaning of "categorical".
            low[~known], high[~known] = low[~known].min(), high[~known].max()
        low[known] = 0
        high[known] = [k - 1 for k in self.n_categories if k is not None]
        widest = int(np.argmax(high - low))
        if not known[widest] and high[widest] - low[widest] + 1 > MAX_LEVELS:
            raise ValueError(
                f"likelihood='categorical' would need {int(high[widest] - low[widest] + 1)} "
                f"levels (X ranges from {low[widest]:g} to {high[widest]:g}); at most "
                f"{MAX_LEVELS} are supported. Bin X first or use likelihood='poisson' or "
                "'gaussian'."
            )
        self.offsets = torch.as_tensor(low, dtype=torch.float32)
        self.n_levels = torch.as_tensor(high - low + 1).long()
        self.register_groups()
        return self

    def register_groups(self):
        """Index buffers: features with the same number of levels share one Categorical."""
        ends = torch.cumsum(self.n_levels, 0)
        starts = ends - self.n_levels
        self.group_sizes = sorted(set(self.n_levels.tolist()))
        for g, size in enumerate(self.group_sizes):
            columns = torch.nonzero(self.n_levels == size).flatten()
            logits = (starts[columns, None] + torch.arange(size)).flatten()
            self.register_buffer(f"group{g}_columns", columns)
            self.register_buffer(f"group{g}_logits", logits)

    def groups(self, params):
        """Yield ``(columns, Categorical)`` for each group of features with equal levels."""
        if len(self.group_sizes) == 1:
            # Every feature in order: the logits reshape without a copy.
            size = self.group_sizes[0]
            yield (
                None,
                Categorical(
                    logits=params.unflatten(-1, (self.n_features, size)), validate_args=False
                ),
            )
            return
        for g, size in enumerate(self.group_sizes):
            logits = params[..., getattr(self, f"group{g}_logits")]
            yield (
                getattr(self, f"group{g}_columns"),
                Categorical(logits=logits.unflatten(-1, (-1, size)), validate_args=False),
            )

    def _per_feature(self, params, value):
        """Assemble ``value(distribution, columns)`` of every group into ``(..., n_features)``.

        ``columns`` is the group's feature positions, or None when one group
        holds every feature in order.
        """
        out = None
        for columns, distribution in self.groups(params):
            result = value(distribution, columns)
            if columns is None:
                return result
            if out is None:
                out = result.new_empty((*result.shape[:-1], self.n_features))
            out[..., columns] = result
        return out

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, int(self.n_levels.sum()))

    def entry_log_prob(self, params, target):
        def log_prob(distribution, columns):
            return distribution.log_prob(target if columns is None else target[..., columns])

        return self._per_feature(params, log_prob)

    def to_target(self, x):
        target = x - self.offsets
        if not self.binned.any():
            return target
        # A unit bin's level is the integer below the value; none outside the levels.
        # (Categorical.log_prob truncates to an integer too: the floor states the rule.)
        binned = torch.floor(target)
        outside = (binned < 0) | (binned >= self.n_levels)
        binned = torch.where(outside, torch.nan, binned)
        return torch.where(self.binned, binned, target)

    def from_target(self, t):
        return t.to(self.offsets.dtype) + self.offsets

    @property
    def one_hot(self):
        """Whether the encoder sees these features one-hot (levels are not a shared scale)."""
        return not (self.shared_levels and all(k is None for k in self.n_categories))

    def mean(self, params):
        if not self.one_hot:
            return self._per_feature(params, lambda d, _: d.probs @ self.levels.to(d.probs.dtype))
        return self.from_target(self._per_feature(params, lambda d, _: d.probs.argmax(-1)))

    def sample(self, params):
        return self.from_target(self._per_feature(params, lambda d, _: draw(d)))


# The largest count float32, in which training computes, holds exactly (2**24).
MAX_COUNT = 2**24


class PoissonLikelihood(Likelihood):
    """Independent Poisson p(x | z) for counts (non-negative integers).

    Chosen as the count model because mixing a Poisson over the latent
    variable already makes the marginal overdispersed, so the extra dispersion
    parameter of a negative binomial is seldom needed. Scores are
    log-probabilities of the counts.
    """

    name = "poisson"

    def check_support(self, X, summary=None):
        summary = summarise_columns(X) if summary is None else summary
        _check_integer_valued(summary, self)
        observed = summary.n_observed > 0
        if not observed.any():
            return
        low, high = summary.low[observed].min(), summary.high[observed].max()
        if low < 0:
            raise ValueError(
                f"likelihood='poisson' requires non-negative counts{self._columns_note()}; got "
                "a minimum of "
                f"{low:g}. Use likelihood='gaussian' for signed data."
            )
        if high > MAX_COUNT:
            raise ValueError(
                f"likelihood='poisson' models counts up to {MAX_COUNT:,}{self._columns_note()}, "
                f"the integers float32 holds exactly; got {high:g}. Use "
                "likelihood='gaussian' with dequantize=True for counts this large."
            )

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, self.n_features)

    def distribution(self, params):
        return Poisson(torch.exp(params), validate_args=False)


class _NoOutputs(nn.Module):
    """The output layer of a part without parameters: an empty vector per row."""

    def forward(self, h):
        return h[..., :0]


class PointMassLikelihood(Likelihood):
    """Columns with one training value each: ``p(x | z)`` puts probability 1 on it.

    The decoder has no output for them and the encoder does not read them.
    The model's term of an observed entry is 0 nats, the log-probability of
    the value under the counting measure of its column; the estimator scores
    any other value ``-inf`` exactly, in float64 (:func:`point_masses`).
    Draws and means are the value.
    """

    name = "point_mass"

    def __init__(self, n_features, column_names=None):
        super().__init__(n_features, column_names)
        # float64: a draw is the value to the last bit.
        self.register_buffer("values", torch.zeros(n_features, dtype=torch.float64))

    def fit(self, summary):
        self.values = torch.as_tensor(summary.low, dtype=torch.float64)
        return self

    def make_head(self, n_inputs, heteroscedastic):
        return _NoOutputs()

    def log_prob(self, params, x):
        return params.new_zeros(params.shape[:-1])

    def mean(self, params):
        return self.values.to(params.dtype).expand(*params.shape[:-1], -1)

    def sample(self, params):
        return self.mean(params)


class _TableHead(nn.Module):
    """The output layers of every part of a :class:`TableLikelihood`, side by side."""

    def __init__(self, heads):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    def forward(self, h):
        return [head(h) for head in self.heads]


class _ColumnSubset:
    """Some columns of ``X``, read only when a chunk of rows is asked for (error messages)."""

    def __init__(self, X, columns):
        self.X, self.columns = X, columns
        self.shape = (X.shape[0], len(columns))

    def __getitem__(self, rows):
        return self.X[rows][:, self.columns]


class TableLikelihood(Likelihood):
    """Observation model of a table: each group of columns has its own likelihood.

    The columns are independent given z, so ``log p(x | z)`` is the sum of
    the parts' log-probabilities over their columns, each with its own
    distribution, support and Jacobian.

    Parameters
    ----------
    parts : list of (Likelihood, list of int)
        Each part and the positions of the columns it models.
    """

    name = "table"

    def __init__(self, parts):
        n_features = sum(len(columns) for _, columns in parts)
        super().__init__(n_features)
        self.parts = nn.ModuleList(part for part, _ in parts)
        for i, (_, columns) in enumerate(parts):
            self.register_buffer(f"part{i}_columns", torch.as_tensor(columns, dtype=torch.long))

    def part_columns(self, i):
        """The positions of the columns that part ``i`` models, a long tensor."""
        return getattr(self, f"part{i}_columns")

    def check_support(self, X, summary=None):
        summary = summarise_columns(X) if summary is None else summary
        for i, part in enumerate(self.parts):
            columns = self.part_columns(i).numpy()
            part.check_support(_ColumnSubset(X, columns), summary.select(columns))

    def fit(self, summary):
        for i, part in enumerate(self.parts):
            part.fit(summary.select(self.part_columns(i).numpy()))
        return self

    def make_head(self, n_inputs, heteroscedastic):
        return _TableHead([part.make_head(n_inputs, heteroscedastic) for part in self.parts])

    def log_prob(self, params, x):
        return sum(
            part.log_prob(part_params, x[..., self.part_columns(i)])
            for i, (part, part_params) in enumerate(zip(self.parts, params, strict=True))
        )

    def _assemble(self, params, method):
        out = None
        for i, (part, part_params) in enumerate(zip(self.parts, params, strict=True)):
            values = getattr(part, method)(part_params)
            if out is None:
                out = values.new_empty((*values.shape[:-1], self.n_features))
            out[..., self.part_columns(i)] = values.to(out.dtype)
        return out

    def mean(self, params):
        return self._assemble(params, "mean")

    def sample(self, params):
        return self._assemble(params, "sample")


#: Registry of the available likelihoods, by the name users pass.
LIKELIHOODS = {
    cls.name: cls
    for cls in (GaussianLikelihood, BernoulliLikelihood, CategoricalLikelihood, PoissonLikelihood)
}


def make_likelihood(columns):
    """The observation model of a table, from its :class:`~._schema.ColumnSpec` list.

    Columns with the same likelihood form one part; a single part covering
    every column is returned as it is (a plain numeric matrix).
    """
    groups = {}
    for j, column in enumerate(columns):
        groups.setdefault(column.likelihood, []).append(j)
    parts = []
    for name, positions in groups.items():
        names = [columns[j].name for j in positions]
        if name == "categorical":
            counts = [
                None if columns[j].categories is None else len(columns[j].categories)
                for j in positions
            ]
            shared = all(columns[j].shared_levels for j in positions)
            part = CategoricalLikelihood(
                len(positions), names, shared_levels=shared, n_categories=counts
            )
        elif name == PointMassLikelihood.name:
            part = PointMassLikelihood(len(positions), names)
        else:
            part = LIKELIHOODS[name](len(positions), names)
        parts.append((part, positions))
    if len(parts) == 1:
        return parts[0][0]
    return TableLikelihood(parts)


def one_hot_columns(likelihood):
    """``(column, offset, n_levels)`` of every feature the encoder should see one-hot."""
    if isinstance(likelihood, TableLikelihood):
        parts = [
            (part, likelihood.part_columns(i).tolist()) for i, part in enumerate(likelihood.parts)
        ]
    else:
        parts = [(likelihood, list(range(likelihood.n_features)))]
    found = []
    for part, columns in parts:
        if isinstance(part, CategoricalLikelihood) and part.one_hot:
            for local, j in enumerate(columns):
                found.append((j, float(part.offsets[local]), int(part.n_levels[local])))
    return sorted(found)


def point_masses(likelihood):
    """``(positions, values)`` of the point-mass columns, a list and a float64 array."""
    if isinstance(likelihood, PointMassLikelihood):
        return list(range(likelihood.n_features)), likelihood.values.double().cpu().numpy()
    if not isinstance(likelihood, TableLikelihood):
        return [], np.empty(0)
    for i, part in enumerate(likelihood.parts):
        if isinstance(part, PointMassLikelihood):
            return likelihood.part_columns(i).tolist(), part.values.double().cpu().numpy()
    return [], np.empty(0)
