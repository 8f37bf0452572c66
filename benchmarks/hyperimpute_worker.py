"""Run one HyperImpute imputer in its own environment (pandas < 3; see ``make hyperimpute-env``).

HyperImpute's ``missforest`` and ``hyperimpute`` imputers silently return the
mean fill under pandas 3 (a chained assignment they rely on became a no-op),
so ``bench_imputation.py`` runs them here, in ``.venv-hyperimpute``, through
files: ``python hyperimpute_worker.py METHOD SEED IN.npz OUT.npz``. ``IN``
holds ``X``, a float array with NaN for the missing entries (the benchmark
has standardised the numbers and ordinal-encoded the labels); ``OUT`` gets
the imputed array and the pandas version that ran it. This script imports
nothing of the project.
"""

import sys

import numpy as np
import pandas as pd


def main(argv):
    method, seed, source, target = argv[0], int(argv[1]), argv[2], argv[3]
    from hyperimpute.plugins.imputers import Imputers

    X = pd.DataFrame(np.load(source)["X"])
    imputer = Imputers().get(method, random_state=seed)
    filled = np.asarray(imputer.fit_transform(X), dtype=np.float64)
    np.savez(target, X=filled, pandas=pd.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
