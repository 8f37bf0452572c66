"""Training throughput from one process to several workers: the rungs of the Scale page.

Protocol: N x 64 float32 low-rank rows (the scaling benchmark's data) are
written once as a ``.npy`` file and as ``--partitions`` Parquet files, and
10,000 more rows are held out. A 2-worker ``LocalCluster`` (one thread per
worker, processes) runs throughout. Every method fits the same model,
``VAETransformer(n_components=16, hidden_layer_sizes=(256, 256),
batch_size=b, max_iter=--epochs, early_stopping=False)`` for each ``b`` of
``--batch-sizes``, one thread per process:

- ``memmap``: ``fit`` on the ``.npy`` file opened with ``mmap_mode="r"``;
- ``partial_fit``: one call per chunk of the memmap (``--partitions`` chunks an epoch);
- ``Dask, client``: ``fit`` on ``dd.read_parquet`` (summary pass on the
  workers, training on the client);
- ``data_parallel, 1 worker`` and ``2 workers``: the same fit inside
  ``data_parallel(n_workers=...)``.

The methods run in interleaved rounds (``--repeats``), in reverse order every
other round, with ``random_state`` the round's number. Rows/s are training rows
over the whole call (``fit`` rows/s: summary pass, shipping and start-up
included) and over the epochs alone (skorch's epoch durations; rank 0's on
the workers); ratios are against ``memmap`` in the same round. The held-out
score is the mean ELBO per row, in nats, of the 10,000 held-out rows.
Command: ``python benchmarks/bench_data_parallel.py --threads 1``.
"""

import statistics
import tempfile
import time
import warnings
from pathlib import Path

import _harness as harness
import numpy as np

N_FEATURES = 64
N_HELD_OUT = 10_000
PARAMS = dict(n_components=16, hidden_layer_sizes=(256, 256), early_stopping=False)


def write_data(directory, n_samples, n_partitions):
    """The training rows as ``train.npy`` and Parquet files, and the held-out rows."""
    import pandas as pd

    X = harness.low_rank_data(n_samples + N_HELD_OUT, N_FEATURES, seed=0)
    train, held_out = X[:n_samples], X[n_samples:]
    np.save(directory / "train.npy", train)
    parquet = directory / "parquet"
    parquet.mkdir()
    columns = [f"x{j}" for j in range(N_FEATURES)]
    for k, rows in enumerate(np.array_split(np.arange(n_samples), n_partitions)):
        pd.DataFrame(train[rows], columns=columns).to_parquet(parquet / f"part-{k:03d}.parquet")
    return directory / "train.npy", parquet, pd.DataFrame(held_out, columns=columns)


def epoch_seconds(vae):
    """The seconds of every epoch of a fresh estimator's fit (or partial_fit calls)."""
    return float(sum(vae.net_.history[:, "dur"]))


def methods(path, parquet, epochs, n_partitions, batch_size):
    """name -> fit(seed) returning the fitted estimator."""
    import dask.dataframe as dd

    from sklearn_vae import VAETransformer, data_parallel

    params = {**PARAMS, "batch_size": batch_size}

    def memmap(seed):
        return VAETransformer(**params, max_iter=epochs, random_state=seed).fit(
            np.load(path, mmap_mode="r")
        )

    def partial(seed):
        X = np.load(path, mmap_mode="r")
        vae = VAETransformer(**params, random_state=seed)
        chunks = np.array_split(np.arange(len(X)), n_partitions)
        for _ in range(epochs):
            for rows in chunks:
                vae.partial_fit(X[rows[0] : rows[-1] + 1])
        return vae

    def dask_client(seed):
        return VAETransformer(**params, max_iter=epochs, random_state=seed).fit(
            dd.read_parquet(parquet)
        )

    def workers(n):
        def fit(seed):
            with data_parallel(n_workers=n):
                return VAETransformer(**params, max_iter=epochs, random_state=seed).fit(
                    dd.read_parquet(parquet)
                )

        return fit

    return {
        "memmap": memmap,
        "partial_fit": partial,
        "Dask, client": dask_client,
        "data_parallel, 1 worker": workers(1),
        "data_parallel, 2 workers": workers(2),
    }


def measure(fits, held_out, repeats):
    """name -> one dict per round: seconds, epoch seconds, held-out score."""
    names = list(fits)
    measured = {name: [] for name in names}
    for round_ in range(repeats):
        order = names[::-1] if round_ % 2 else names
        for name in order:
            start = time.perf_counter()
            vae = fits[name](round_)
            seconds = time.perf_counter() - start
            measured[name].append(
                {
                    "seconds": seconds,
                    "epoch_seconds": epoch_seconds(vae),
                    "score": float(vae.score(held_out)),
                }
            )
            print(f"round {round_}: {name}: {seconds:.1f} s, {measured[name][-1]}")
    return measured


def add_rows(run, measured, batch_size, rows_trained):
    """One result row per method: medians and ranges over the rounds."""
    for name, runs in measured.items():
        ratios = [
            r["seconds"] / m["seconds"] for r, m in zip(runs, measured["memmap"], strict=True)
        ]
        run.add(
            method=name,
            batch_size=batch_size,
            fit_rows_per_s=harness.summary([rows_trained / r["seconds"] for r in runs]),
            epoch_rows_per_s=harness.summary([rows_trained / r["epoch_seconds"] for r in runs]),
            seconds_ratio_to_memmap=harness.summary(ratios),
            score=harness.summary([r["score"] for r in runs]),
            score_mean=statistics.fmean(r["score"] for r in runs),
        )


def main():
    parser = harness.parser(__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=float, default=1e5)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 2048])
    args = parser.parse_args()
    n_samples = int(args.n_samples)
    if args.quick:
        n_samples, args.epochs, args.repeats = 4000, 1, 1
    from distributed import Client, LocalCluster

    run = harness.Run(
        "bench_data_parallel",
        args,
        params={**PARAMS, "max_iter": args.epochs},
        n_samples=n_samples,
        n_features=N_FEATURES,
        n_held_out=N_HELD_OUT,
        n_workers=2,
    )
    warnings.simplefilter("ignore")  # ConvergenceWarning: a fixed number of epochs
    with tempfile.TemporaryDirectory() as tmp, harness.thread_limit(args.threads):
        path, parquet, held_out = write_data(Path(tmp), n_samples, args.partitions)
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=args.threads, processes=True, dashboard_address=":0"
        )
        with cluster, Client(cluster):
            for batch_size in args.batch_sizes:
                fits = methods(path, parquet, args.epochs, args.partitions, batch_size)
                measured = measure(fits, held_out, args.repeats)
                add_rows(run, measured, batch_size, n_samples * args.epochs)
    for row in run.rows:
        print(
            f"batch {row['batch_size']:5d}, {row['method']:>26}: fit "
            f"{row['fit_rows_per_s']['median']:9,.0f} rows/s, epochs "
            f"{row['epoch_rows_per_s']['median']:9,.0f} rows/s, time / memmap "
            f"{row['seconds_ratio_to_memmap']['median']:.2f}, held out "
            f"{row['score']['median']:.3f} ({row['score']['min']:.3f} to {row['score']['max']:.3f})"
        )
    run.write()


if __name__ == "__main__":
    main()
