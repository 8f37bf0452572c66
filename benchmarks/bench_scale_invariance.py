"""Training-set log-density of 3-d standard normal data multiplied by a scale.

Protocol: ``X = s * N(0, I_3)`` (500 rows, seed 0) for each scale ``s``; each
model's mean training-set log-density per row plus ``3 log s``, which an exact
log-density gives the same at every scale (true value ``-3/2 (1 + log 2 pi)
= -4.257``); a failed fit reports its exception. Command:
``python benchmarks/bench_scale_invariance.py --threads 1``.
"""

import sys
import warnings

import _harness as harness
import numpy as np
from sklearn.mixture import GaussianMixture

from sklearn_vae import HistogramDensity, VAETransformer

SCALES = (1.0, 1e-20, 1e-30, 1e39, 1e300)


def models(max_iter):
    return {
        "GaussianMixture(1, diag)": lambda: GaussianMixture(
            1, covariance_type="diag", random_state=0
        ),
        "HistogramDensity": HistogramDensity,
        "VAETransformer": lambda: VAETransformer(
            n_components=2, hidden_layer_sizes=(), max_iter=max_iter, random_state=0
        ),
    }


def mean_log_density(make, X, scale):
    """``(score + d log scale, None)``, or ``(None, the exception's first words)``."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            value = make().fit(X).score(X) + X.shape[1] * np.log(scale)
            return (value, None) if np.isfinite(value) else (None, "NaN")
    except Exception as error:  # noqa: BLE001 - the table reports any failure
        return None, f"{type(error).__name__}: {' '.join(str(error).split()[:4])}"


def main(argv=None):
    args = harness.parser(__doc__.splitlines()[0]).parse_args(argv)
    run = harness.Run("bench_scale_invariance", args, true_value=-1.5 * (1 + np.log(2 * np.pi)))
    X = np.random.default_rng(0).normal(size=(500, 3))
    with harness.thread_limit(args.threads):
        for scale in SCALES:
            for name, make in models(5 if args.quick else 200).items():
                nats, error = mean_log_density(make, X * scale, scale)
                run.add(scale=scale, model=name, nats=nats, error=error)
    printed = [{**row, "text": row["error"] or f"{row['nats']:.4f}"} for row in run.rows]
    harness.print_rows(
        printed, [("scale", "scale", "g"), ("model", "model", ""), ("text", "nats + 3 log s", "")]
    )
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
