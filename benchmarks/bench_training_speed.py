"""Training-loop overhead of ``VAETransformer`` against a plain torch loop.

What is measured
----------------
Wall-clock time per training epoch of the same VAE (``VAEModule`` with a
``GaussianLikelihood``, MLP encoder ``n_features -> 256 -> 256 -> 16`` and the
mirrored decoder, Adam with learning rate 1e-3, batch size 256, loss
``NegativeELBO``) on the same float32 data, trained two ways:

``library``
    ``VAETransformer(...).fit(X)``: skorch's loop over ``BatchIterator``
    batches, with the estimator's callbacks. The time of an epoch is skorch's
    own ``dur`` column of ``vae.net_.history`` (from ``on_epoch_begin`` to
    ``on_epoch_end``), so input validation, the column statistics and net
    construction done by ``fit`` are not counted.

``plain``
    A hand-written torch loop: the data are one float32 tensor, each epoch
    draws ``torch.randperm`` and slices that index tensor into batches, then
    ``zero_grad``, forward, ``NegativeELBO``, ``backward`` and ``step``. Like
    skorch, it reads every batch loss with ``loss.item()`` (to report an epoch
    loss). The module is built exactly as ``VAETransformer.fit`` builds it, so
    the per-batch maths is identical and only the loop around it differs.
    An epoch is timed with ``time.perf_counter`` around the whole pass,
    including the permutation.

Both loops run with the same number of torch threads (``--threads``, set with
``torch.set_num_threads``). When ``--epochs`` is more than 1, the first epoch
of every fit is a warm-up (allocator, first-call dispatch) and is excluded;
the time per epoch of one fit is the mean over its remaining epochs.

A repeat is one fit of each loop. The order alternates between repeats
(library, plain, then plain, library, ...), so slow drift of the machine
affects both loops alike. The ratio is computed per repeat (library time per
epoch over plain time per epoch in the same repeat) and its median is
reported; the target is a ratio of at most 1.10.

Run it on an otherwise idle machine. When torch uses every core, one other
busy process can slow an epoch tenfold or more (torch's threads wait for one
another at every operation), far more than its share of the CPU. The script
prints the load average before and after, and warns when fits of the same
loop disagree by more than 25%.

Run with ``python benchmarks/bench_training_speed.py --help`` for the options.
"""

import argparse
import gc
import os
import sys
import time
import warnings

import numpy as np
import torch
from _common import load_average, print_environment
from sklearn.exceptions import ConvergenceWarning

from sklearn_vae import VAETransformer
from sklearn_vae._data import column_mean_std
from sklearn_vae._likelihoods import GaussianLikelihood
from sklearn_vae._module import VAEModule
from sklearn_vae._net import NegativeELBO

N_COMPONENTS = 16
HIDDEN_LAYER_SIZES = (256, 256)
LEARNING_RATE = 1e-3
TARGET_RATIO = 1.10


def make_data(n_samples, n_features, rank=8, noise=0.5, seed=0):
    """Low-rank-plus-noise Gaussian data.

    Parameters
    ----------
    n_samples, n_features : int
        Shape of the data.
    rank : int, default=8
        Number of latent factors.
    noise : float, default=0.5
        Standard deviation of the isotropic noise added to the factors.
    seed : int, default=0
        Seed of the NumPy generator.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float32
    """
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_samples, rank))
    loadings = rng.standard_normal((rank, n_features))
    X = factors @ loadings + noise * rng.standard_normal((n_samples, n_features))
    return X.astype(np.float32)


def epoch_seconds(durations):
    """Mean seconds per epoch of one fit, skipping the warm-up epoch.

    Parameters
    ----------
    durations : sequence of float
        Seconds taken by each epoch, in order.

    Returns
    -------
    seconds : float
        Mean over all epochs but the first, or the only epoch's time when
        there is just one.
    """
    durations = list(durations)
    return float(np.mean(durations[1:] if len(durations) > 1 else durations))


def time_library(X, epochs, batch_size, seed):
    """Fit ``VAETransformer`` and return skorch's per-epoch durations.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), dtype float32
        Training data.
    epochs : int
        Number of epochs; early stopping is off, so exactly this many run.
    batch_size : int
        Minibatch size.
    seed : int
        ``random_state`` of the estimator.

    Returns
    -------
    durations : list of float
        Seconds per epoch, from ``vae.net_.history[:, "dur"]``.
    """
    vae = VAETransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        batch_size=batch_size,
        learning_rate_init=LEARNING_RATE,
        max_iter=epochs,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=seed,
        # The plain loop's thread count, not the library's policy for small networks.
        n_jobs=torch.get_num_threads(),
    )
    vae.fit(X)
    if vae.n_iter_ != epochs:
        raise RuntimeError(f"VAETransformer ran {vae.n_iter_} epochs instead of {epochs}.")
    return [float(d) for d in vae.net_.history[:, "dur"]]


def make_module(X, seed):
    """Build the ``VAEModule`` the way ``VAETransformer.fit`` builds it.

    The estimator standardises Gaussian columns before they reach the
    module, whose own input scaling is then the identity.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data.
    seed : int
        Seed of torch's global generator for the weight initialisation.

    Returns
    -------
    module : VAEModule
    """
    likelihood = GaussianLikelihood(X.shape[1])
    torch.manual_seed(seed)
    module = VAEModule(likelihood, N_COMPONENTS, HIDDEN_LAYER_SIZES)
    module.set_input_scaling(np.zeros(X.shape[1]), np.ones(X.shape[1]))
    return module


def time_plain(X, epochs, batch_size, seed):
    """Train the same module with a plain torch loop; per-epoch durations.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), dtype float32
        Training data; standardised once into a float32 tensor before the timed epochs.
    epochs : int
        Number of epochs.
    batch_size : int
        Minibatch size.
    seed : int
        Seed for the weights and the shuffling.

    Returns
    -------
    durations : list of float
        Seconds per epoch, each measured around the whole pass.
    """
    module = make_module(X, seed)
    criterion = NegativeELBO()
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    # Standardised once, before the timed epochs (the library does it per batch).
    loc, scale = column_mean_std(X)
    data = torch.from_numpy(((X - loc) / scale).astype(np.float32))
    n_samples = data.shape[0]
    module.train()
    durations = []
    for _ in range(epochs):
        start_time = time.perf_counter()
        order = torch.randperm(n_samples)
        total_loss = 0.0
        for start in range(0, n_samples, batch_size):
            batch = data[order[start : start + batch_size]]
            optimizer.zero_grad()
            loss = criterion(*module(batch))
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * batch.shape[0]
        durations.append(time.perf_counter() - start_time)
        if not np.isfinite(total_loss):
            raise RuntimeError("The plain loop diverged.")
    return durations


def run(X, epochs, batch_size, repeats, seed):
    """Time both loops ``repeats`` times, alternating which one goes first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), dtype float32
        Training data.
    epochs, batch_size, repeats, seed : int
        See the command-line options.

    Returns
    -------
    seconds : dict of str to list of float
        Seconds per epoch (warm-up excluded) of each fit, per loop.
    """
    timers = {"library": time_library, "plain": time_plain}
    seconds = {name: [] for name in timers}
    for repeat in range(repeats):
        order = ["library", "plain"] if repeat % 2 == 0 else ["plain", "library"]
        for name in order:
            gc.collect()
            durations = timers[name](X, epochs, batch_size, seed)
            seconds[name].append(epoch_seconds(durations))
            epochs_text = " ".join(f"{d:.3f}" for d in durations)
            print(f"  repeat {repeat + 1}/{repeats} {name:<8} epochs (s): {epochs_text}")
    return seconds


def format_table(seconds):
    """Plain-text table of the timings, one row per loop.

    Parameters
    ----------
    seconds : dict of str to list of float
        Seconds per epoch of each fit, per loop.

    Returns
    -------
    table : str
        Aligned columns, followed by a line listing the per-repeat ratios.
    ratio : float
        Median over repeats of library over plain seconds per epoch.
    """
    ratios = np.asarray(seconds["library"]) / np.asarray(seconds["plain"])
    header = ("loop", "median epochs/s", "median s/epoch", "min s/epoch", "max s/epoch", "ratio")
    rows = []
    for name, values in seconds.items():
        ratio = f"{np.median(ratios):.3f}" if name == "library" else "1.000"
        rows.append(
            (
                name,
                f"{1 / np.median(values):.3f}",
                f"{np.median(values):.3f}",
                f"{np.min(values):.3f}",
                f"{np.max(values):.3f}",
                ratio,
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        cells[0] = row[0].ljust(widths[0])
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"per-repeat ratios: {' '.join(f'{r:.3f}' for r in ratios)}")
    return "\n".join(lines), float(np.median(ratios))


def disturbance_warning(seconds, spread=1.25):
    """A warning when fits of the same loop differ too much, else None.

    Parameters
    ----------
    seconds : dict of str to list of float
        Seconds per epoch of each fit, per loop.
    spread : float, default=1.25
        Largest acceptable ratio of the slowest to the fastest fit of a loop.

    Returns
    -------
    warning : str or None
    """
    worst = max(np.max(values) / np.min(values) for values in seconds.values())
    if worst <= spread:
        return None
    return (
        f"WARNING: fits of the same loop differ by up to {worst:.2f}x; other processes "
        "were probably competing for the cores. The median ratio pairs fits from the "
        "same repeat and resists a few disturbed repeats, but rerun on an idle machine "
        "to be sure."
    )


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (first is warm-up)")
    parser.add_argument("--repeats", type=int, default=5, help="fits of each loop")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="data, weights and shuffling")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmark and print the machine, the per-fit times and the table."""
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    torch.set_num_threads(args.threads)

    print_environment()
    warm_up = "first epoch of each fit excluded" if args.epochs > 1 else "no warm-up excluded"
    print(
        f"data: {args.n_samples} x {args.n_features} float32; batch {args.batch_size}; "
        f"{args.epochs} epochs per fit ({warm_up}); {args.repeats} repeats"
    )

    print(f"load average before: {load_average()}")

    X = make_data(args.n_samples, args.n_features, seed=args.seed)
    seconds = run(X, args.epochs, args.batch_size, args.repeats, args.seed)
    print(f"load average after: {load_average()}")
    table, ratio = format_table(seconds)
    print()
    print(table)
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target library/plain <= {TARGET_RATIO:.2f}: {verdict} (median ratio {ratio:.3f})")
    warning = disturbance_warning(seconds)
    if warning is not None:
        print(warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
