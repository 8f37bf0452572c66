"""Novelty detection: DensityOutlierDetector against scikit-learn's and PyOD's detectors.

What is measured
----------------
ROC AUC of each detector's score (inliers positive, higher score = more
normal; PyOD's outlier score is negated) on two novelty tasks. Every detector
is fitted on inliers only and scores a held-out test part that mixes inliers
and novelties; no label of the test part is used for any choice.

``digits``, leave one class out: ``load_digits`` (1797 x 64, integers 0..16)
is split once, ``train_test_split(test_size=0.25, stratify=y,
random_state=0)``. For each class c, every detector is fitted on the training
rows of the other nine classes and scores all 450 test rows; the test rows of
class c are the novelties. The table reports the mean AUC over the ten
classes and the smallest.

``breast_cancer``: ``load_breast_cancer`` (569 x 30) split the same way;
detectors are fitted on the benign training rows and score all test rows,
malignant rows being the novelties.

Detectors (one run, same splits)
    ``DensityOutlierDetector(random_state=0)`` with its default settings
    (``VAE default``: a dequantised Gaussian VAE on digits, a Gaussian VAE on
    breast cancer, each scored by its IWAE estimate, K=100, minus the
    log-density of a ``HistogramDensity`` background), and, indented under
    it, other scores of the same fitted VAE and histogram: the ELBO alone,
    the IWAE alone, the ELBO minus the background. ``IsolationForest(random_state=0)``,
    ``LocalOutlierFactor(novelty=True)``, ``OneClassSVM()``,
    ``KernelDensity`` (digits: bandwidth 4, since CV of the log-likelihood
    on integers picks spikes at the integers; breast cancer: bandwidth by
    3-fold CV of the log-likelihood of the training rows, log-spaced grid), ``GaussianMixture``
    (``n_components`` in 1, 2, 4, 8 by BIC on the training rows,
    ``reg_covar=1e-3``, ``random_state=0``) and PyOD's ``VAE`` with its
    defaults (``verbose=0``). On breast cancer every baseline sees the
    features standardised by a ``StandardScaler`` fitted on its training rows
    (in a ``Pipeline``); PyOD standardises internally. VAEs see the raw
    features (``VAETransformer`` standardises internally).

Columns: AUC per task (digits: mean over the ten classes and the minimum) and
the fit time per task (digits: the sum over the ten fits), in seconds, on
``--threads`` threads. Targets: the default VAE detector reaches 0.95 mean
AUC on digits, and beats PyOD's VAE and IsolationForest on both tasks; a line
per target says PASS or FAIL.

``--quick`` fits three digits classes, caps VAE training at a few epochs and
skips the variants: a smoke run of the script, not a measurement.

Command::

    OMP_NUM_THREADS=1 python benchmarks/bench_novelty.py --threads 1
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _common import add_threads_argument, format_table, load_average, start_run
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.neighbors import KernelDensity, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAETransformer

TASKS = ("digits", "breast_cancer")
QUICK_MAX_ITER = 5
QUICK_CLASSES = (0, 1, 8)
TARGET_DIGITS = 0.95


# ----------------------------------------------------------------------------- data


def load_task(name):
    """(X_train, y_train, X_test, y_test, label) for one task; ``label`` names the classes."""
    loader = load_digits if name == "digits" else load_breast_cancer
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    return X_train, y_train, X_test, y_test


def splits(name, quick):
    """Yield (fit rows, test rows, is_inlier of the test rows) for each sub-task."""
    X_train, y_train, X_test, y_test = load_task(name)
    if name == "digits":
        for c in QUICK_CLASSES if quick else range(10):
            yield X_train[y_train != c], X_test, y_test != c
    else:
        # In load_breast_cancer, target 1 is benign.
        yield X_train[y_train == 1], X_test, y_test == 1


# ------------------------------------------------------------------------- models


class PyODScore:
    """PyOD's detector with the sign flipped: ``score_samples`` is higher for inliers."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X):
        self.detector.fit(X)
        return self

    def score_samples(self, X):
        return -self.detector.decision_function(X)


class KDEByCV:
    """KernelDensity with its bandwidth chosen by 3-fold CV on the training rows."""

    def __init__(self, standardise):
        self.standardise = standardise

    def fit(self, X):
        if self.standardise:
            self.scaler_ = StandardScaler().fit(X)
            X = self.scaler_.transform(X)
        scale = float(np.mean(np.std(X, axis=0)))
        grid = {"bandwidth": scale * np.logspace(-1.5, 0.5, 12)}
        cv = KFold(3, shuffle=True, random_state=0)
        self.kde_ = GridSearchCV(KernelDensity(), grid, cv=cv).fit(X).best_estimator_
        return self

    def score_samples(self, X):
        if self.standardise:
            X = self.scaler_.transform(X)
        return self.kde_.score_samples(X)


class GMMByBIC:
    """GaussianMixture with ``n_components`` in (1, 2, 4, 8) chosen by BIC."""

    def __init__(self, standardise):
        self.standardise = standardise

    def fit(self, X):
        if self.standardise:
            self.scaler_ = StandardScaler().fit(X)
            X = self.scaler_.transform(X)
        fits = [GaussianMixture(k, reg_covar=1e-3, random_state=0).fit(X) for k in (1, 2, 4, 8)]
        self.gmm_ = min(fits, key=lambda gmm: gmm.bic(X))
        return self

    def score_samples(self, X):
        if self.standardise:
            X = self.scaler_.transform(X)
        return self.gmm_.score_samples(X)


def vae(task, quick, **params):
    """A VAETransformer for the task: dequantised Gaussian on digits' integers."""
    if task == "digits" and "likelihood" not in params:
        params = {"likelihood": "gaussian", "dequantize": True, **params}
    if quick:
        params["max_iter"] = QUICK_MAX_ITER
    return VAETransformer(random_state=0, **params)


def make_detectors(task, quick):
    """(name, factory) pairs; the factory returns an unfitted detector."""
    scaled = task != "digits"

    def baseline(model):
        return make_pipeline(StandardScaler(), model) if scaled else model

    def pyod_vae():
        from pyod.models.vae import VAE

        return PyODScore(VAE(verbose=0, epoch_num=2 if quick else 30))

    detectors = [
        ("VAE default", lambda: DensityOutlierDetector(random_state=0)),
    ]
    if quick:
        # The default's configuration, trained for a few epochs.
        integer = task == "digits"
        detectors = [
            (
                "VAE default",
                lambda: DensityOutlierDetector(
                    vae(task, quick),
                    background=HistogramDensity(bins="integer" if integer else "auto"),
                    random_state=0,
                ),
            )
        ]
    detectors += [
        ("IsolationForest", lambda: IsolationForest(random_state=0)),
        ("LocalOutlierFactor", lambda: baseline(LocalOutlierFactor(novelty=True))),
        ("OneClassSVM", lambda: baseline(OneClassSVM())),
        (
            # On digits' integers a log-likelihood CV picks spikes at the integers.
            "KernelDensity",
            (lambda: KDEByCV(scaled)) if scaled else (lambda: KernelDensity(bandwidth=4.0)),
        ),
        ("GaussianMixture (BIC)", lambda: GMMByBIC(scaled)),
        ("PyOD VAE", pyod_vae),
    ]
    return detectors


# --------------------------------------------------------------------- evaluation


def evaluate(factory, task, quick):
    """AUC of each sub-task and the total fit time."""
    aucs, fit_seconds, variants = [], 0.0, {}
    for X_fit, X_test, is_inlier in splits(task, quick):
        detector = factory()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detector.fit(X_fit)
        fit_seconds += time.perf_counter() - start
        aucs.append(roc_auc_score(is_inlier, detector.score_samples(X_test)))
        if isinstance(detector, DensityOutlierDetector):
            for name, scores in variant_scores(detector, X_test).items():
                variants.setdefault(name, []).append(roc_auc_score(is_inlier, scores))
    return aucs, fit_seconds, variants


def variant_scores(detector, X):
    """Scores of the fitted default's parts: the ELBO, the IWAE, each with and without
    the background (no refit: the same VAE and histogram)."""
    vae, background = detector.estimator_, detector.background_
    elbo = vae.score_samples(X)
    iwae = vae.log_likelihood(X, n_importance_samples=detector.n_importance_samples, random_state=0)
    scores = {"  ELBO alone": elbo, "  IWAE alone": iwae}
    if background is not None:
        scores["  ELBO - background"] = elbo - background.score_samples(X)
    return scores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    add_threads_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start_run(args.threads)
    print(f"load average before: {load_average()}")
    print(f"mode: {'QUICK (smoke run)' if args.quick else 'full'}")
    total_start = time.perf_counter()
    results = {}
    for task in args.tasks:
        for name, factory in make_detectors(task, args.quick):
            aucs, seconds, variants = evaluate(factory, task, args.quick)
            results.setdefault(name, {})[task] = (aucs, seconds)
            for variant, variant_aucs in variants.items():
                results.setdefault(variant, {})[task] = (variant_aucs, float("nan"))
            detail = " ".join(f"{auc:.3f}" for auc in aucs)
            print(f"  {task:13s} {name:28s} AUC {np.mean(aucs):.3f} ({detail}) fit {seconds:.1f} s")

    header = ["detector"]
    for task in args.tasks:
        header += (
            ["digits mean AUC", "digits min", "digits fit s"]
            if task == "digits"
            else ["breast cancer AUC", "bc fit s"]
        )
    rows = []
    for name, by_task in results.items():
        row = [name]
        for task in args.tasks:
            if task not in by_task:  # a variant that does not apply to this task
                row += ["—"] * (3 if task == "digits" else 2)
                continue
            aucs, seconds = by_task[task]
            row += [f"{np.mean(aucs):.3f}"]
            if task == "digits":
                row += [f"{min(aucs):.3f}"]
            row += ["—" if np.isnan(seconds) else f"{seconds:.1f}"]
        rows.append(row)
    print()
    print(format_table(header, rows))

    suffix = " (quick run: not a measurement)" if args.quick else ""
    print("\ntargets:")
    ours = results["VAE default"]
    if "digits" in args.tasks:
        value = float(np.mean(ours["digits"][0]))
        verdict = "PASS" if value >= TARGET_DIGITS else "FAIL"
        print(f"  VAE default digits mean AUC >= {TARGET_DIGITS}: {verdict} ({value:.3f}){suffix}")
    for task in args.tasks:
        value = float(np.mean(ours[task][0]))
        for rival in ("PyOD VAE", "IsolationForest"):
            other = float(np.mean(results[rival][task][0]))
            verdict = "PASS" if value > other else "FAIL"
            print(
                f"  VAE default above {rival} on {task}: {verdict} "
                f"({value:.3f} vs {other:.3f}){suffix}"
            )
    print(f"\nload average after: {load_average()}")
    print(f"total time: {time.perf_counter() - total_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
