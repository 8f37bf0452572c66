"""Shared fixtures: small data sets and quickly fitted models."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import sklearn_vae
from sklearn_vae import VAETransformer

# The tests' models are tiny: one torch thread is fastest for them.
torch.set_num_threads(1)

# Mutation testing (``make mutation``): mutmut names the mutant it runs in
# MUTANT_UNDER_TEST and runs every selected test that reaches the mutated function.
# The schema's code runs in nearly every test (each fit validates its input), so
# its mutants run only the tests of tables and of the estimators that take them:
# they reach each of its functions, and the training tests of numeric arrays add time only.
MUTATION_TEST_FILES = {
    "sklearn_vae._schema.": {
        "tests/test_tables.py",
        "tests/test_histogram.py",
        "tests/test_imputer.py",
        "tests/test_imputer_ensemble.py",
        "tests/test_conditional_sampling.py",
        "tests/test_outlier.py",
        "tests/test_sample_dtypes.py",
        "tests/test_odd_columns.py",
    },
    "sklearn_vae._unseen.": {
        "tests/test_unseen.py",
        "tests/test_tables.py",
        "tests/test_histogram.py",
        "tests/test_odd_columns.py",
    },
    "sklearn_vae._sampling.": {
        "tests/test_synthetic_rows.py",
        "tests/test_conditional_sampling.py",
        "tests/test_sample_dtypes.py",
    },
    "sklearn_vae._column_kinds.": {
        "tests/test_column_kinds.py",
        "tests/test_tables.py",
    },
    "sklearn_vae._rules.": {
        "tests/test_rules.py",
        "tests/test_tables.py",
        "tests/test_vae_dequantize.py",
    },
}


#: Under mutmut every library function is wrapped in a trampoline, one more stack
#: frame, so a warning's ``stacklevel`` points one frame off: tests of where a
#: warning points check it outside mutation runs only.
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ


def warned_from(warning, filename):
    """Whether ``warning`` points at ``filename`` (always True under mutmut, see above)."""
    return UNDER_MUTMUT or warning.filename == filename


def pytest_collection_modifyitems(config, items):
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    prefixes = [prefix for prefix in MUTATION_TEST_FILES if mutant.startswith(prefix)]
    if not prefixes:
        return
    files = MUTATION_TEST_FILES[prefixes[0]]
    kept = [item for item in items if item.nodeid.split("::")[0] in files]
    if kept:  # never leave a mutant with no test: it would count as not killed
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


FAST = dict(
    n_components=2, hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=50, random_state=0
)


def round_trip(estimator, dump):
    """``estimator`` saved and loaded again with ``dump``: "pickle" or "joblib"."""
    import io
    import pickle

    import joblib

    if dump == "pickle":
        return pickle.loads(pickle.dumps(estimator))
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def make_factor_data(n_samples, n_features=6, n_components=2, seed=0):
    """Rows drawn from a factor-analysis model: x = W z + mu + noise."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_components, n_features))
    noise = rng.uniform(0.3, 0.8, size=n_features)
    Z = rng.normal(size=(n_samples, n_components))
    return Z @ W + 3.0 + rng.normal(size=(n_samples, n_features)) * noise


def make_label_table(n_samples=300, seed=0):
    """A label, an integer and a real column, independent of each other."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "s": pd.Series(rng.choice(["a", "b", "c"], n_samples), dtype=object),
            "n": rng.integers(0, 20, n_samples),
            "y": rng.normal(size=n_samples),
        }
    )


@pytest.fixture(scope="session")
def X_small():
    return make_factor_data(200)


@pytest.fixture(scope="session")
def fitted_vae(X_small):
    return VAETransformer(**FAST).fit(X_small)


def peak_rss_growth(setup, small, large):
    """Growth, in bytes, of a fresh process's peak RSS from running ``small`` to ``large``.

    A new interpreter runs ``setup``, then ``small``, reads its peak resident
    set size, runs ``large`` and reads it again, so the interpreter, torch and
    the allocations the two jobs share cancel. The peak is the kernel's
    ``VmHWM``, which starts afresh with the new program: ``ru_maxrss`` is not
    used because Linux carries the forking parent's peak (here pytest's)
    across ``exec`` into it. The package is imported from where the tests
    import it.
    """
    code = "\n".join(
        [
            "def _peak():",
            "    with open('/proc/self/status') as status:",
            "        line = next(line for line in status if line.startswith('VmHWM:'))",
            "    return int(line.split()[1]) * 1024",
            textwrap.dedent(setup),
            textwrap.dedent(small),
            "_before = _peak()",
            textwrap.dedent(large),
            "print(_peak() - _before)",
        ]
    )
    package_root = str(Path(sklearn_vae.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": package_root, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])
