"""Does the default training reach the optimum on small data?

Protocol: unscaled ``load_wine`` and ``load_breast_cancer``, split
``train_test_split(X, test_size=0.25, random_state=0)``; ``FactorAnalysis``
and VAEs with ``n_components=k``: the linear VAE (``hidden_layer_sizes=()``,
which starts at the factor-analysis fit), the same model from random weights
(identity encoder and decoder networks, which the start does not touch), and
the default VAE; median over ``--seeds`` of the held-out ``log_likelihood``
(K=1000). Command: ``python benchmarks/bench_small_data.py --threads 1``.
"""

import sys
import warnings

import _harness as harness
import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from torch import nn

from sklearn_vae import VAETransformer

DATASETS = {"wine": load_wine, "breast_cancer": load_breast_cancer}
# The linear-Gaussian model from random weights: identity trunks make the encoder and the
# decoder the same affine maps as hidden_layer_sizes=(), but a custom network starts at random.
RUNS = {
    "VAE linear, random start": {
        "encoder": nn.Identity(),
        "decoder": nn.Identity(),
        "decoder_variance": "homoscedastic",
    },
    "VAE linear, factor analysis start": {"hidden_layer_sizes": ()},
    "VAE default": {},
}
IMPORTANCE_SAMPLES = 1000
TARGET_GAP = 0.5


def held_out_vae(train, test, k, seed, params, max_iter):
    """Held-out mean IWAE, epochs, and whether the fit stopped at ``max_iter``."""
    vae = VAETransformer(
        n_components=k, likelihood="gaussian", max_iter=max_iter, random_state=seed, **params
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        vae.fit(train)
    capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    score = vae.log_likelihood(test, n_importance_samples=IMPORTANCE_SAMPLES, random_state=0)
    return float(score.mean()), vae.n_iter_, capped


def main(argv=None):
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--n-components", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    k = args.n_components
    run = harness.Run(
        "bench_small_data", args, n_importance_samples=IMPORTANCE_SAMPLES, target_gap=TARGET_GAP
    )
    max_iter = 5 if args.quick else 500
    with harness.thread_limit(args.threads):
        for name in args.datasets:
            X = DATASETS[name]().data
            train, test = train_test_split(X, test_size=0.25, random_state=0)
            fa = float(FactorAnalysis(n_components=k).fit(train).score(test))
            run.add(dataset=name, model="FactorAnalysis", nats=fa, per_seed=[fa])
            for model in args.runs:
                fits = [
                    held_out_vae(train, test, k, seed, RUNS[model], max_iter)
                    for seed in range(args.seeds)
                ]
                scores, epochs, capped = (list(values) for values in zip(*fits, strict=True))
                row = run.add(
                    dataset=name,
                    model=model,
                    nats=float(np.median(scores)),
                    per_seed=scores,
                    epochs=int(np.median(epochs)),
                    at_max_iter=sum(capped),
                    gap_to_fa=fa - float(np.median(scores)),
                )
                print(f"{name} {model}: {row['nats']:.2f} ({row['epochs']} epochs)")
    print(f"\nn_components={k}, held-out log_likelihood K={IMPORTANCE_SAMPLES}, unscaled data")
    harness.print_rows(
        run.rows,
        [
            ("dataset", "dataset", ""),
            ("model", "model", ""),
            ("nats", "median nats", ".2f"),
            ("gap_to_fa", "FA - VAE", "+.2f"),
            ("epochs", "median epochs", "d"),
            ("at_max_iter", "at max_iter", "d"),
        ],
        left=2,
    )
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
