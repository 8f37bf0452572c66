"""Scoring cost of VAEs against kernel density estimation, and the IWAE bound against K.

What is measured
----------------
(a) Throughput, in query rows per second, of

- ``VAETransformer.score_samples`` (the ELBO),
- ``VAETransformer.log_likelihood`` with K=100 and K=1000 importance samples,
- ``KernelDensity.score_samples`` (Gaussian kernel, default tree and exact
  ``rtol=0``, Scott's bandwidth rule) fitted on 1,000, 10,000 and 100,000
  training rows.

The same run compares ``score_samples`` with other ELBO estimates on the same
fitted module (``vae.net_.module_``), in rows per second and as a ratio to the
plain one-draw float32 ELBO (the target is a ratio of at least 1/3):

- the plain one-draw ELBO: a float32 copy of the module, batches of 1,024
  standardised rows, one ``rsample`` of q(z | x) per row and the analytic KL,
  as a plain torch evaluation loop would compute it;
- the previous ``score_samples``: a float64 copy, the 32 whitened antithetic
  draws of ``score_noise`` shared by every row;
- row-keyed draws (one antithetic pair) with a float64 forward pass;
- row-keyed draws, two antithetic pairs, float32 padded batches;
- shared fixed draws (one antithetic pair), float32 padded batches: the
  cost of the row keys.

The data are synthetic, 64-D: a fixed random mixture of 10 Gaussians with
low-rank-plus-noise covariances and overlapping clusters (seed 0). The VAE
(Gaussian likelihood, ``n_components=16``, the default MLP) is trained once on
10,000 rows for a deliberately small number of epochs (``--vae-epochs``,
early stopping off; its ConvergenceWarning is silenced there and only there):
a VAE's scoring cost does not depend on how well it is trained or on its
training-set size, a KDE's does. The query rows are 10,000 further rows of the
same distribution. Slow scorers get fewer query rows: a pilot call on a few
rows (doubled until it takes 0.3 s) estimates the rate, and the largest of
10,000, 5,000, 2,000, 1,000, 500, 200 or 100 rows expected to finish within
``--budget`` seconds is used; the count is shown. Each scorer is then timed
``--repeats`` times on those rows (wall clock, ``time.perf_counter``); the
table gives the median time and rows per second, and the range.

(b) The importance-weighted bound ``log_likelihood`` of a categorical VAE on
the digits test set against the number of importance samples K (1, 10, 100,
1000, 5000 by default), with the ELBO (``score_samples``) for reference. The
digits protocol: ``train_test_split(load_digits().data, test_size=0.25,
random_state=0)``; the VAE (``likelihood="categorical"``, ``n_components=8``,
other parameters at their defaults, ``random_state=0``) is fitted on the 1,347
raw integer training images and scores the 450 test images (log-probabilities,
nats per image). For each K: the mean over rows ± its standard error, the
mean difference to the largest K ± the standard error of the per-row (paired)
differences, and the time of the call. A user can read off the K at which the
bound stops moving relative to the noise of a test-set mean.

Run with ``python benchmarks/bench_scoring.py --help`` for the options.
"""

import argparse
import copy
import sys
import time
import warnings
from functools import partial

import numpy as np
import torch
from _common import add_threads_argument, format_table, load_average, start_run
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KernelDensity

from sklearn_vae import VAETransformer
from sklearn_vae._data import iter_batches

N_FEATURES = 64
N_VAE_TRAIN = 10_000
N_QUERY = 10_000
KDE_SIZES = (1_000, 10_000, 100_000)
QUERY_CHOICES = (10_000, 5_000, 2_000, 1_000, 500, 200, 100)
PILOT_SECONDS = 0.3


def make_mixture_data(n_samples, n_features=N_FEATURES, n_clusters=10, rank=8, seed=0):
    """Rows of a fixed random Gaussian mixture with low-rank-plus-noise covariances.

    Cluster means are standard normal vectors, so clusters overlap (mean
    distance about 11, within-cluster spread about 8): like real data, and
    unlike well separated blobs, a KD or ball tree cannot prune whole clusters.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    """
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_clusters, n_features))
    loadings = rng.standard_normal((n_clusters, rank, n_features)) / np.sqrt(rank)
    labels = rng.integers(n_clusters, size=n_samples)
    X = 0.3 * rng.standard_normal((n_samples, n_features))
    for k in range(n_clusters):
        rows = labels == k
        X[rows] += means[k] + rng.standard_normal((rows.sum(), rank)) @ loadings[k]
    return X


def choose_query_rows(score, X_query, budget):
    """Largest count in ``QUERY_CHOICES`` whose estimated scoring time fits ``budget``.

    A pilot scores 10, 20, 40, ... rows until a call takes ``PILOT_SECONDS``;
    it also serves as warm-up.
    """
    n = 10
    while True:
        start = time.perf_counter()
        score(X_query[:n])
        elapsed = time.perf_counter() - start
        if elapsed >= PILOT_SECONDS or n >= len(X_query):
            break
        n = min(2 * n, len(X_query))
    rate = n / elapsed
    for count in QUERY_CHOICES:
        if count <= len(X_query) and count / rate <= budget:
            return count
    return QUERY_CHOICES[-1]


def time_scorer(score, X_query, repeats, budget):
    """Median and range of the seconds to score the chosen number of query rows."""
    n_rows = choose_query_rows(score, X_query, budget)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        score(X_query[:n_rows])
        seconds.append(time.perf_counter() - start)
    return n_rows, seconds


def plain_one_draw_elbo(vae, X):
    """The one-draw float32 ELBO of each row, as a plain torch evaluation loop computes it."""
    module = copy.deepcopy(vae.net_.module_).float().eval()
    scores = []
    with torch.inference_mode():
        for x in iter_batches(X, 1024, standardisation=vae._standardisation):
            q = module.posterior(x)
            kl = torch.distributions.kl_divergence(q, module.prior)
            scores.append((module.log_prob_given(q.rsample(), x) - kl).numpy())
    return np.concatenate(scores)


def shared_draws_elbo(vae, X):
    """One antithetic pair of fixed draws shared by every row, float32 padded batches."""
    shared = vae.net_.module_.validation_noise[:1, None, :]

    def elbo(module, x, keyed):
        return module.elbo(x, shared.expand_as(keyed))

    # The keys are computed and ignored: only the draws differ from score_samples.
    return vae._evaluate(elbo, X, dtype=torch.float32, keyed_pairs=1)


def elbo_alternatives(vae):
    """Scorers of part (a)'s ELBO comparison: name and ``score(X)``, the reference first."""
    keyed = partial(vae._evaluate, lambda m, x, noise: m.elbo(x, noise))
    return [
        ("plain one-draw ELBO, float32 (reference)", lambda Q: plain_one_draw_elbo(vae, Q)),
        ("score_samples: keyed pair, float32 padded", vae.score_samples),
        (
            "old: 32 shared whitened draws, float64",
            lambda Q: vae._evaluate(lambda m, x: m.elbo(x), Q),
        ),
        ("keyed pair, float64", lambda Q: keyed(Q, dtype=torch.float64, keyed_pairs=1)),
        ("keyed 2 pairs, float32 padded", lambda Q: keyed(Q, dtype=torch.float32, keyed_pairs=2)),
        ("shared pair, float32 padded", lambda Q: shared_draws_elbo(vae, Q)),
        (
            "log_likelihood K=100",
            lambda Q: vae.log_likelihood(Q, n_importance_samples=100, random_state=0),
        ),
    ]


def compare_elbo_estimates(vae, X_query, args):
    """The ELBO comparison table of part (a): rows/s and the ratio to the plain one-draw ELBO.

    The scorers are timed in rounds, each scorer once per round, and a ratio is
    taken within a round: on a busy machine the load changes less within a
    round than between the first and the last scorer.
    """
    scorers = elbo_alternatives(vae)
    counts = [choose_query_rows(score, X_query, args.budget) for _, score in scorers]
    rates = np.empty((args.repeats, len(scorers)))
    for r in range(args.repeats):
        for i, ((_, score), n_rows) in enumerate(zip(scorers, counts, strict=True)):
            start = time.perf_counter()
            score(X_query[:n_rows])
            rates[r, i] = n_rows / (time.perf_counter() - start)
    ratios = rates / rates[:, :1]
    rows = [
        (
            name,
            f"{n_rows:,}",
            f"{np.median(rates[:, i]):,.0f}",
            f"{np.median(ratios[:, i]):.3f}",
            f"{ratios[:, i].min():.3f}-{ratios[:, i].max():.3f}",
        )
        for i, ((name, _), n_rows) in enumerate(zip(scorers, counts, strict=True))
    ]
    print()
    header = ("ELBO estimate, same module", "query rows", "rows/s", "ratio", "min-max ratio")
    print(format_table(header, rows))
    print(
        f"ratio = rows/s over the plain one-draw float32 ELBO's in the same round "
        f"(median of {args.repeats} rounds); target for score_samples: >= 0.333"
    )


def throughput(args):
    """Part (a): rows per second of the VAE's scores and of KDE as its training set grows."""
    X = make_mixture_data(max(KDE_SIZES) + N_QUERY)
    X_pool, X_query = X[: max(KDE_SIZES)], X[max(KDE_SIZES) :]
    print(
        f"\n(a) throughput: synthetic {N_FEATURES}-D Gaussian mixture; query rows from "
        f"{N_QUERY:,} held-out rows; median of {args.repeats} runs; budget about "
        f"{args.budget:.0f} s per run"
    )

    vae = VAETransformer(
        n_components=16, max_iter=args.vae_epochs, early_stopping=False, random_state=0
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Deliberately few epochs: only the scoring cost matters here.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        vae.fit(X_pool[:N_VAE_TRAIN])
    print(
        f"VAE: gaussian, n_components=16, hidden (256, 256), trained on {N_VAE_TRAIN:,} rows "
        f"for {vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s"
    )

    compare_elbo_estimates(vae, X_query, args)
    if not args.kde:
        return
    scorers = [
        ("VAE score_samples (ELBO)", "—", "—", vae.score_samples),
        (
            "VAE log_likelihood K=100",
            "—",
            "—",
            lambda Q: vae.log_likelihood(Q, n_importance_samples=100, random_state=0),
        ),
        (
            "VAE log_likelihood K=1000",
            "—",
            "—",
            lambda Q: vae.log_likelihood(Q, n_importance_samples=1000, random_state=0),
        ),
    ]
    for size in KDE_SIZES:
        start = time.perf_counter()
        kde = KernelDensity(bandwidth="scott").fit(X_pool[:size])
        fit_seconds = time.perf_counter() - start
        scorers.append(
            (
                "KernelDensity score_samples",
                f"{size:,}",
                f"{kde.bandwidth_:.3f} (fit {fit_seconds:.2f} s)",
                kde.score_samples,
            )
        )

    header = (
        "scorer",
        "KDE train rows",
        "bandwidth",
        "query rows",
        "median s",
        "rows/s",
        "min-max s",
    )
    rows = []
    for name, size, bandwidth, score in scorers:
        n_rows, seconds = time_scorer(score, X_query, args.repeats, args.budget)
        median = float(np.median(seconds))
        rows.append(
            (
                name,
                size,
                bandwidth,
                f"{n_rows:,}",
                f"{median:.3f}",
                f"{n_rows / median:,.0f}",
                f"{min(seconds):.3f}-{max(seconds):.3f}",
            )
        )
        label = name if size == "—" else f"{name}, {size} training rows"
        print(f"  timed {label}: {n_rows:,} rows, runs (s) {np.round(seconds, 3).tolist()}")
    print()
    print(format_table(header, rows))


def reference_elbo(vae, X, n_draws=1000, seed=0):
    """An independent float64 ELBO of each row: ``n_draws`` fresh draws of q(z | x), exact KL."""
    module = copy.deepcopy(vae.net_.module_).double().eval()
    x = torch.as_tensor(vae._standardisation.transform(X))
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        q = module.posterior(x)
        total = torch.zeros(len(x), dtype=torch.float64)
        for _ in range(n_draws // 100):
            eps = torch.randn(100, *q.mean.shape, generator=generator, dtype=torch.float64)
            total += module.log_prob_given(q.mean + q.stddev * eps, x).sum(0)
        elbo = total / (100 * (n_draws // 100)) - torch.distributions.kl_divergence(q, module.prior)
    return elbo.numpy() + vae._standardisation.log_jacobian(X)


def iwae_against_k(args):
    """Part (b): the IWAE bound of a categorical VAE on the digits test set, for each K."""
    X = load_digits().data
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    print(
        f"\n(b) IWAE bound against K: digits, {len(X_train)} train / {len(X_test)} test images, "
        "raw integers, nats per image"
    )
    vae = VAETransformer(n_components=8, likelihood="categorical", random_state=0)
    start = time.perf_counter()
    vae.fit(X_train)
    print(
        f"VAE: categorical, n_components=8, defaults otherwise (early stopping); "
        f"{vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s"
    )

    scores = {}
    seconds = {}
    start = time.perf_counter()
    scores["ELBO"] = vae.score_samples(X_test)
    seconds["ELBO"] = time.perf_counter() - start
    for k in args.k_values:
        start = time.perf_counter()
        scores[f"IWAE K={k}"] = vae.log_likelihood(X_test, n_importance_samples=k, random_state=0)
        seconds[f"IWAE K={k}"] = time.perf_counter() - start
        print(f"  K={k}: {seconds[f'IWAE K={k}']:.1f} s")

    reference_name = f"IWAE K={max(args.k_values)}"
    reference = scores[reference_name]
    n = len(X_test)
    header = ("estimate", "mean nats", "± s.e.", f"minus {reference_name}", "± paired s.e.", "s")
    rows = []
    for name, values in scores.items():
        difference = values - reference
        rows.append(
            (
                name,
                f"{values.mean():.2f}",
                f"{values.std(ddof=1) / np.sqrt(n):.2f}",
                f"{difference.mean():+.2f}",
                f"{difference.std(ddof=1) / np.sqrt(n):.2f}",
                f"{seconds[name]:.1f}",
            )
        )
    print()
    print(format_table(header, rows))
    print(
        "s.e. = standard error of the mean over the test images; paired s.e. = standard "
        f"error of the per-image difference to {reference_name} (same images, so much smaller)."
    )
    error = scores["ELBO"] - reference_elbo(vae, X_test)
    print(
        f"score_samples against a 1,000-draw float64 ELBO: per-image error sd "
        f"{error.std(ddof=1):.2f} nats, mean error {error.mean():+.3f} "
        f"± {error.std(ddof=1) / np.sqrt(n):.3f} (s.e.; the reference's own error is included)"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per scorer")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="target seconds per timed run (sets rows)"
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
        help="part (a): only the comparison of ELBO estimates, without the KDE table",
    )
    parser.add_argument("--parts", nargs="+", choices=("a", "b"), default=["a", "b"])
    add_threads_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start_run(args.threads)
    print(f"load average before: {load_average()}")
    total_start = time.perf_counter()
    if "a" in args.parts:
        throughput(args)
    if "b" in args.parts:
        iwae_against_k(args)
    print(f"\nload average after: {load_average()}")
    print(f"total time: {time.perf_counter() - total_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
