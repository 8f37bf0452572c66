"""What the training objective buys on digits: ELBO against the IWAE bound, and weight averaging.

Protocol: ``load_digits``, ``train_test_split(test_size=0.25,
random_state=0)``; the categorical VAE on the raw integers and the Gaussian
VAE with ``dequantize=True``, ``n_components=16``, every other parameter at
its default but ``objective``, ``n_draws`` and ``average``; ``--seeds`` fits
each, scored by the held-out ``log_likelihood`` (K=1000) and ELBO; fit time
and its ratio to the default's. Command:
``OMP_NUM_THREADS=1 python benchmarks/bench_objectives.py --threads 1``.
"""

import sys

import _harness as harness
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_vae import VAETransformer

MODELS = {
    "categorical": {"likelihood": "categorical"},
    "gaussian_dequantize": {"likelihood": "gaussian", "dequantize": True},
}
OBJECTIVES = {
    "elbo1": {"objective": "elbo", "n_draws": 1},
    "elbo5": {"objective": "elbo", "n_draws": 5},
    "iwae5": {"objective": "iwae", "n_draws": 5},
    "iwae10": {"objective": "iwae", "n_draws": 10},
    "elbo1+average": {"objective": "elbo", "n_draws": 1, "average": True},
    "iwae5+average": {"objective": "iwae", "n_draws": 5, "average": True},
}
TARGETS = {"categorical": -91.5, "gaussian_dequantize": -103.0}


def fit_and_score(train, test, model, objective, seed, k, max_iter):
    """Held-out log-likelihood and ELBO, epochs and fit seconds of one seeded fit."""
    vae = VAETransformer(
        n_components=16,
        max_iter=max_iter,
        random_state=seed,
        **MODELS[model],
        **OBJECTIVES[objective],
    )
    _, seconds = harness.timed(lambda: vae.fit(train))
    log_likelihood = vae.log_likelihood(test, n_importance_samples=k, random_state=0).mean()
    return float(log_likelihood), float(vae.score(test)), vae.n_iter_, seconds


def main(argv=None):
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--objectives", nargs="+", choices=list(OBJECTIVES), default=list(OBJECTIVES)
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-importance-samples", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_importance_samples = 1, min(args.n_importance_samples, 10)
        args.objectives = [o for o in args.objectives if o in ("elbo1", "iwae5+average")]
    run = harness.Run("bench_objectives", args, n_components=16, targets=TARGETS)
    max_iter = 3 if args.quick else 500
    X = load_digits().data
    train, test = train_test_split(X, test_size=0.25, random_state=0)
    with harness.thread_limit(args.threads):
        for model in args.models:
            default_time = None
            for objective in args.objectives:
                runs = [
                    fit_and_score(
                        train, test, model, objective, seed, args.n_importance_samples, max_iter
                    )
                    for seed in range(args.seeds)
                ]
                nats, elbo, epochs, seconds = (list(values) for values in zip(*runs, strict=True))
                if objective == "elbo1":
                    default_time = float(np.mean(seconds))
                row = run.add(
                    model=model,
                    setting=objective,
                    **OBJECTIVES[objective],
                    nats=nats,
                    nats_mean=float(np.mean(nats)),
                    nats_std=float(np.std(nats)),
                    elbo_mean=float(np.mean(elbo)),
                    epochs_mean=float(np.mean(epochs)),
                    fit_s=float(np.mean(seconds)),
                    fit_ratio=None if default_time is None else np.mean(seconds) / default_time,
                    target=TARGETS[model],
                )
                print(
                    f"{model} {objective}: {row['nats_mean']:.2f} ± {row['nats_std']:.2f}, "
                    f"{row['fit_s']:.0f} s"
                )
    print(f"\nheld-out log_likelihood K={args.n_importance_samples}, n_components=16")
    harness.print_rows(
        run.rows,
        [
            ("model", "model", ""),
            ("setting", "objective", ""),
            ("nats_mean", "log-likelihood", ".2f"),
            ("nats_std", "± std", ".2f"),
            ("elbo_mean", "ELBO", ".2f"),
            ("epochs_mean", "epochs", ".0f"),
            ("fit_s", "fit s", ".0f"),
            ("fit_ratio", "x default", ".2f"),
            ("target", "target", ".1f"),
        ],
        left=2,
    )
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
