"""Where does VAEImputer lose on breast cancer: the fitted model, or the importance sampler?

For a linear-Gaussian VAE (``hidden_layer_sizes=()``) the exact conditional mean
E[x_miss | x_obs] has a closed form, so the imputation error splits into the
model's part (exact conditional of the fitted model against the truth) and the
sampler's part (importance-sampling estimate against the exact conditional).
A full-covariance Gaussian fitted on the complete data is the reference.

Run::

    OMP_NUM_THREADS=1 python benchmarks/diagnose_imputation.py
"""

import sys, warnings, numpy as np; sys.path.insert(0, "benchmarks"); sys.path.insert(0, "tests"); warnings.filterwarnings("ignore")
import torch; torch.set_num_threads(1)
from _tables import load_breast_cancer_table, make_missing
from _linear_gaussian import linear_vae_marginal, gaussian_conditional
from sklearn_vae import VAETransformer, VAEImputer
df = load_breast_cancer_table(missing=0).drop(columns="label")
X = df.to_numpy(); inc = make_missing(df, 0.2, 0).to_numpy()
sd = X.std(0)
for nc in (8, 16):
    vae = VAETransformer(hidden_layer_sizes=(), n_components=nc, learning_rate_init=1e-2, random_state=0)
    imp = VAEImputer(vae, n_importance_samples=1000, random_state=0).fit(inc)
    filled = imp.transform(inc)
    mean, cov = linear_vae_marginal(imp.estimator_)
    exact = inc.copy()
    for i, row in enumerate(inc):
        obs = ~np.isnan(row)
        if obs.all(): continue
        m, _ = gaussian_conditional(mean, cov, obs, row[obs][None, :])
        exact[i, ~obs] = m[0]
    miss = np.isnan(inc)
    rm = lambda F: np.sqrt(np.mean(((F - X) / sd)[miss] ** 2))
    print(f"nc={nc}: IS rmse {rm(filled):.3f}  exact-conditional rmse {rm(exact):.3f}  |IS-exact| rms {np.sqrt(np.mean(((filled-exact)/sd)[miss]**2)):.3f}")
# reference: the conditional mean under the empirical (complete-data) Gaussian
mu, C = X.mean(0), np.cov(X.T)
oracle = inc.copy()
for i, row in enumerate(inc):
    obs = ~np.isnan(row)
    if obs.all(): continue
    m, _ = gaussian_conditional(mu, C, obs, row[obs][None, :]); oracle[i, ~obs] = m[0]
print(f"full-covariance Gaussian fitted on complete data (an oracle): rmse {np.sqrt(np.mean(((oracle - X) / sd)[np.isnan(inc)] ** 2)):.3f}")
