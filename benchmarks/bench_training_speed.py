"""Training speed of ``VAETransformer.fit`` against the same VAE trained by a plain torch loop.

Protocol: ``--n-samples`` x ``--n-features`` float32 low-rank rows; the
library fits ``VAETransformer(n_components=16, hidden_layer_sizes=(256, 256),
batch_size=256, early_stopping=False)`` (an epoch timed by skorch's ``dur``
column, so validation and set-up are not counted); the reference is
``PlainVAE`` (the same shape, Gaussian, Adam at 1e-3, one-draw ELBO) trained
by a plain loop over shuffled batches of the standardised data (an epoch
timed around the whole pass). The first epoch of each fit is a warm-up;
``--repeats`` rounds alternate which goes first, and the median of the
per-round ratio library / plain is reported (target: at most 1.10). Command:
``python benchmarks/bench_training_speed.py --threads 2``.
"""

import sys
import time
import warnings

import _harness as harness
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_vae import VAETransformer

N_COMPONENTS = 16
HIDDEN_LAYER_SIZES = (256, 256)
LEARNING_RATE = 1e-3
TARGET_RATIO = 1.10


def after_warm_up(durations):
    """Mean seconds per epoch, the first (warm-up) epoch left out when there are more."""
    return float(np.mean(durations[1:] if len(durations) > 1 else durations))


def library_epochs(X, epochs, batch_size, seed):
    """Seconds of each epoch of ``VAETransformer.fit``, from skorch's history."""
    vae = VAETransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        likelihood="gaussian",
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    if vae.n_iter_ != epochs:
        raise RuntimeError(f"VAETransformer ran {vae.n_iter_} epochs instead of {epochs}.")
    return [float(d) for d in vae.net_.history[:, "dur"]]


def plain_epochs(X, epochs, batch_size, seed):
    """Seconds of each epoch of a plain torch loop training ``PlainVAE``."""
    torch.manual_seed(seed)
    model = harness.PlainVAE(X.shape[1], N_COMPONENTS, HIDDEN_LAYER_SIZES)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    data = harness.standardise(X)
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data))
        total = 0.0
        for first in range(0, len(data), batch_size):
            batch = data[order[first : first + batch_size]]
            optimizer.zero_grad()
            loss = -model.elbo(batch).mean()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)  # skorch reads every batch loss too
        durations.append(time.perf_counter() - start)
        if not np.isfinite(total):
            raise RuntimeError("The plain loop diverged.")
    return durations


def main(argv=None):
    parser = harness.parser(__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (first is warm-up)")
    parser.add_argument("--repeats", type=int, default=5, help="fits of each loop")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="data, weights and shuffling")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.repeats = min(args.n_samples, 5_000), min(args.repeats, 2)
    run = harness.Run("bench_training_speed", args, target_ratio=TARGET_RATIO)
    X = harness.low_rank_data(args.n_samples, args.n_features, seed=args.seed)
    per_epoch = {"library": [], "plain": []}

    def fit(name, timer):
        """A call for ``harness.interleaved``: one fit, its seconds per epoch after warm-up."""

        def call():
            per_epoch[name].append(timer(X, args.epochs, args.batch_size, args.seed))
            return after_warm_up(per_epoch[name][-1])

        return call

    with harness.thread_limit(args.threads):
        calls = {"library": fit("library", library_epochs), "plain": fit("plain", plain_epochs)}
        timings = harness.interleaved(calls, args.repeats, reference="plain", reported=True)
    for name, timing in timings.items():
        run.add(
            loop=name, epochs_per_s=1 / timing["median"], epoch_durations=per_epoch[name], **timing
        )
    harness.print_rows(
        run.rows,
        [
            ("loop", "loop", ""),
            ("epochs_per_s", "median epochs/s", ".3f"),
            ("median", "median s/epoch", ".3f"),
            ("min", "min s/epoch", ".3f"),
            ("max", "max s/epoch", ".3f"),
            ("ratio", "ratio", ".3f"),
        ],
    )
    ratio = timings["library"]["ratio"]
    print(f"per-round ratios: {' '.join(f'{r:.3f}' for r in timings['library']['ratios'])}")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target library/plain <= {TARGET_RATIO:.2f}: {verdict} (median ratio {ratio:.3f})")
    run.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
