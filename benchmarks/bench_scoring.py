"""Scoring cost of VAEs against a plain torch ELBO and kernel density estimation; IWAE against K.

Protocol. (a) Query rows per second on a synthetic 64-D Gaussian mixture:
``score_samples`` and ``log_likelihood`` (K=100, 1000) of a Gaussian
``VAETransformer(n_components=16)`` trained for ``--vae-epochs``, the
one-draw float32 ELBO of ``PlainVAE`` (the same shape in plain torch, the
reference) and ``KernelDensity`` fitted on 1,000 to 100,000 rows; each scorer
gets as many query rows as fit in ``--budget`` seconds, and all are timed
once per round for ``--repeats`` rounds, a ratio to the reference taken
within each round. (b) ``log_likelihood`` of a categorical VAE on the digits
test set (``train_test_split(test_size=0.25, random_state=0)``) against the
number of importance samples K. Command:
``OMP_NUM_THREADS=1 python benchmarks/bench_scoring.py --threads 1``.
"""

import sys
import warnings

import _harness as harness
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KernelDensity

from sklearn_vae import VAETransformer

N_FEATURES = 64
N_VAE_TRAIN = 10_000
N_QUERY = 10_000
KDE_SIZES = (1_000, 10_000, 100_000)
QUERY_CHOICES = (10_000, 5_000, 2_000, 1_000, 500, 200, 100)
PILOT_SECONDS = 0.3
BATCH_SIZE = 1024


def make_mixture_data(n_samples, n_features=N_FEATURES, n_clusters=10, rank=8, seed=0):
    """Rows of a fixed random Gaussian mixture with overlapping low-rank-plus-noise clusters."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_clusters, n_features))
    loadings = rng.standard_normal((n_clusters, rank, n_features)) / np.sqrt(rank)
    labels = rng.integers(n_clusters, size=n_samples)
    X = 0.3 * rng.standard_normal((n_samples, n_features))
    for k in range(n_clusters):
        rows = labels == k
        X[rows] += means[k] + rng.standard_normal((rows.sum(), rank)) @ loadings[k]
    return X


def query_rows(score, X_query, budget):
    """Largest count in ``QUERY_CHOICES`` expected to score within ``budget`` seconds.

    A pilot scores 10, 20, 40, ... rows until a call takes ``PILOT_SECONDS``
    (it is also the warm-up).
    """
    n = 10
    while True:
        _, elapsed = harness.timed(lambda n=n: score(X_query[:n]))
        if elapsed >= PILOT_SECONDS or n >= len(X_query):
            break
        n = min(2 * n, len(X_query))
    rate = n / elapsed
    fitting = [c for c in QUERY_CHOICES if c <= len(X_query) and c / rate <= budget]
    return fitting[0] if fitting else QUERY_CHOICES[-1]


def plain_elbo(X_train):
    """The reference scorer: a ``PlainVAE``'s one-draw float32 ELBO in batches of 1,024."""
    torch.manual_seed(0)
    model = harness.PlainVAE(X_train.shape[1]).eval()
    loc, scale = X_train.mean(axis=0), X_train.std(axis=0)

    def score(X):
        x = torch.from_numpy(((X - loc) / scale).astype(np.float32))
        with torch.inference_mode():
            return np.concatenate(
                [model.elbo(x[i : i + BATCH_SIZE]).numpy() for i in range(0, len(x), BATCH_SIZE)]
            )

    return score


def throughput(run, args):
    """Part (a): rows per second of each scorer, and its ratio to the plain ELBO's."""
    X = make_mixture_data(max(KDE_SIZES) + N_QUERY)
    X_pool, X_query = X[: max(KDE_SIZES)], X[max(KDE_SIZES) :]
    vae = VAETransformer(
        n_components=16, max_iter=args.vae_epochs, early_stopping=False, random_state=0
    )
    with warnings.catch_warnings():
        # Deliberately few epochs: only the scoring cost matters here.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        _, seconds = harness.timed(lambda: vae.fit(X_pool[:N_VAE_TRAIN]))
    print(f"VAE trained on {N_VAE_TRAIN:,} rows for {vae.n_iter_} epochs in {seconds:.1f} s")
    scorers = {
        "plain torch one-draw ELBO, float32 (reference)": (plain_elbo(X_pool[:N_VAE_TRAIN]), {}),
        "VAE score_samples (ELBO)": (vae.score_samples, {}),
    }
    for k in (100, 1000) if args.kde else (100,):
        scorers[f"VAE log_likelihood K={k}"] = (
            lambda Q, k=k: vae.log_likelihood(Q, n_importance_samples=k, random_state=0),
            {},
        )
    for size in KDE_SIZES if args.kde else ():
        kde, seconds = harness.timed(
            lambda size=size: KernelDensity(bandwidth="scott").fit(X_pool[:size])
        )
        scorers[f"KernelDensity, {size:,} training rows"] = (
            kde.score_samples,
            {"kde_train_rows": size, "bandwidth": float(kde.bandwidth_), "kde_fit_s": seconds},
        )
    counts = {name: query_rows(score, X_query, args.budget) for name, (score, _) in scorers.items()}
    calls = {
        name: (lambda s=score, n=counts[name]: s(X_query[:n]))
        for name, (score, _) in scorers.items()
    }
    timings = harness.interleaved(calls, args.repeats)
    reference = next(iter(scorers))
    reference_rates = counts[reference] / np.asarray(timings[reference]["seconds"])
    for name, timing in timings.items():
        rates = counts[name] / np.asarray(timing["seconds"])
        ratios = rates / reference_rates
        run.add(
            part="a",
            scorer=name,
            query_rows=counts[name],
            rows_per_s=float(np.median(rates)),
            ratio=float(np.median(ratios)),
            ratio_min=float(ratios.min()),
            ratio_max=float(ratios.max()),
            seconds=timing["seconds"],
            **scorers[name][1],
        )
    print()
    harness.print_rows(
        [r for r in run.rows if r["part"] == "a"],
        [
            ("scorer", "scorer", ""),
            ("query_rows", "query rows", ",d"),
            ("rows_per_s", "rows/s", ",.0f"),
            ("ratio", "ratio", ".3f"),
            ("ratio_min", "min", ".3f"),
            ("ratio_max", "max", ".3f"),
        ],
    )


def iwae_against_k(run, args):
    """Part (b): the IWAE bound of a categorical VAE on the digits test set, for each K."""
    X_train, X_test = train_test_split(load_digits().data, test_size=0.25, random_state=0)
    vae = VAETransformer(
        n_components=8, likelihood="categorical", max_iter=5 if args.quick else 500, random_state=0
    )
    _, seconds = harness.timed(lambda: vae.fit(X_train))
    print(f"\ncategorical VAE on digits: {vae.n_iter_} epochs in {seconds:.1f} s")
    scores, seconds = {}, {}
    scores[None], seconds[None] = harness.timed(lambda: vae.score_samples(X_test))
    for k in args.k_values:
        scores[k], seconds[k] = harness.timed(
            lambda k=k: vae.log_likelihood(X_test, n_importance_samples=k, random_state=0)
        )
    reference = scores[max(args.k_values)]
    n = len(X_test)
    for k, values in scores.items():
        difference = values - reference
        run.add(
            part="b",
            estimate="ELBO (score_samples)" if k is None else f"IWAE K={k}",
            k=k,
            mean_nats=float(values.mean()),
            se=float(values.std(ddof=1) / np.sqrt(n)),
            minus_largest_k=float(difference.mean()),
            paired_se=float(difference.std(ddof=1) / np.sqrt(n)),
            seconds=seconds[k],
        )
    harness.print_rows(
        [r for r in run.rows if r["part"] == "b"],
        [
            ("estimate", "estimate", ""),
            ("mean_nats", "mean nats", ".2f"),
            ("se", "± s.e.", ".2f"),
            ("minus_largest_k", f"minus K={max(args.k_values)}", "+.2f"),
            ("paired_se", "± paired s.e.", ".2f"),
            ("seconds", "s", ".1f"),
        ],
    )


def parse_args(argv=None):
    parser = harness.parser(__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="target seconds per timed call (sets rows)"
    )
    parser.add_argument("--vae-epochs", type=int, default=10, help="epochs of the part (a) VAE")
    parser.add_argument(
        "--k-values",
        type=int,
        nargs="+",
        default=[1, 10, 100, 1000, 5000],
        help="importance samples for part (b)",
    )
    parser.add_argument(
        "--no-kde",
        dest="kde",
        action="store_false",
        help="part (a) without KernelDensity and K=1000",
    )
    parser.add_argument("--parts", nargs="+", choices=("a", "b"), default=["a", "b"])
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.budget, args.vae_epochs, args.kde = 1, 0.2, 1, False
        args.k_values = [1, 10]
    return args


def main(argv=None):
    args = parse_args(argv)
    run = harness.Run("bench_scoring", args, n_features=N_FEATURES, batch_size=BATCH_SIZE)
    with harness.thread_limit(args.threads):
        if "a" in args.parts:
            throughput(run, args)
        if "b" in args.parts:
            iwae_against_k(run, args)
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
