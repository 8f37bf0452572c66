"""Every gallery script runs as sphinx-gallery runs it, with its training capped.

``make docs`` executes ``examples/plot_*.py`` through sphinx-gallery, which
does not run a script the way ``python plot_x.py`` does: it runs the code
blocks one by one in a fresh ``__main__`` namespace that has no ``__file__``,
with ``sys.argv == [script]``, the working directory set to the script's
folder, matplotlib's Agg backend, stdout captured, and figures scraped after
each block. A script that reads ``__file__`` runs by hand and fails there.

Here sphinx-gallery itself runs the scripts: ``generate_dir_rst``, the
function the docs build calls for the gallery's folder, with the docs'
configuration, in one subprocess as in the build, on a copy of the examples.
In that subprocess the cost of the models is capped, so that the suite stays
fast without a change to the scripts: every line still runs, the models are
only barely trained (``cap_training``), and joblib runs its tasks in the
calling process.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx_gallery", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("plot_*.py"))
COMMITTED_FIGURES = sorted(path.name for path in (ROOT / "examples").glob("*.png"))


def cap_training():
    """Cap the cost of the examples' models, leaving every call in place.

    Every ``VAETransformer.fit`` stops after 2 epochs and every
    ``log_likelihood`` takes at most 10 importance samples; ``VAEImputer``
    fits one model and imputes with 10 importance samples.
    """
    import functools

    from sklearn_vae import VAEImputer, VAETransformer

    def capped(method, **params):
        @functools.wraps(method)
        def capped_method(self, *args, **kwargs):
            self.set_params(**params)
            return method(self, *args, **kwargs)

        return capped_method

    def capped_log_likelihood(method):
        @functools.wraps(method)
        def log_likelihood(self, X, *, n_importance_samples=10, **kwargs):
            n_importance_samples = min(n_importance_samples, 10)
            return method(self, X, n_importance_samples=n_importance_samples, **kwargs)

        return log_likelihood

    VAETransformer.fit = capped(VAETransformer.fit, max_iter=2)
    VAETransformer.log_likelihood = capped_log_likelihood(VAETransformer.log_likelihood)
    VAEImputer.fit = capped(VAEImputer.fit, n_estimators=1, n_importance_samples=10)


def run_gallery(docs_dir, work_dir, results_file):
    """Run the gallery of ``docs_dir`` through sphinx-gallery, as ``make docs`` does.

    The configuration is ``docs/conf.py``'s ``sphinx_gallery_conf``, completed
    with sphinx-gallery's defaults as in a build. Only the folders differ (a
    copy of the examples in ``work_dir``), and a failing script is recorded
    instead of ending the run. Writes each script's error and figures.
    """
    import json
    import runpy
    import shutil
    from pathlib import Path

    from joblib import parallel_config
    from sphinx_gallery.gen_gallery import (
        _fill_gallery_conf_defaults,
        _update_gallery_conf_builder_inited,
    )
    from sphinx_gallery.gen_rst import generate_dir_rst

    cap_training()
    docs, work = Path(docs_dir), Path(work_dir)
    examples, gallery = work / "examples", work / "auto_examples"
    shutil.copytree(docs.parent / "examples", examples, ignore=shutil.ignore_patterns("*.png"))
    (work / "backreferences").mkdir()
    conf = runpy.run_path(str(docs / "conf.py"))["sphinx_gallery_conf"]
    conf = _fill_gallery_conf_defaults(
        dict(
            conf,
            examples_dirs=str(examples),
            gallery_dirs=str(gallery),
            backreferences_dir=str(work / "backreferences"),
        )
    )
    _update_gallery_conf_builder_inited(conf, str(work), plot_gallery=True)
    # Worker processes would each import torch again, and cost more than the
    # capped fits themselves: joblib runs every task in this process instead.
    with parallel_config(backend="sequential"):
        _, _, costs, _, _ = generate_dir_rst(examples, gallery, conf, set())
    failing = {Path(name).name: error for name, error in conf["failing_examples"].items()}
    passing = {Path(name).name for name in conf["passing_examples"]}
    results = {
        Path(cost.src_file).name: {
            "passing": Path(cost.src_file).name in passing,
            "error": failing.get(Path(cost.src_file).name),
            "seconds": cost.execution_time,
            "images": sorted(
                image.name
                for image in (gallery / "images").glob(f"sphx_glr_{Path(cost.src_file).stem}_*")
            ),
        }
        for cost in costs
    }
    Path(results_file).write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    work = tmp_path_factory.mktemp("gallery")
    results_file = work / "results.json"
    code = "\n".join(inspect.getsource(f) for f in (cap_training, run_gallery))
    code += "\nimport sys\nrun_gallery(*sys.argv[1:])\n"
    env = dict(os.environ, OMP_NUM_THREADS="1")  # as `make docs` runs the gallery
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "docs"), str(work), str(results_file)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return {"results": json.loads(results_file.read_text()), "folder": work / "examples"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_under_sphinx_gallery(gallery, name):
    outcome = gallery["results"][name]
    assert outcome["passing"], f"{name} fails under sphinx-gallery:\n{outcome['error']}"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_shows_a_figure_on_its_gallery_page(gallery, name):
    assert gallery["results"][name]["images"], f"sphinx-gallery scraped no figure from {name}"


@pytest.mark.parametrize("figure", COMMITTED_FIGURES)
def test_every_committed_figure_is_written_by_an_example_in_its_folder(gallery, figure):
    # `make examples` refreshes the committed figures by running each script in
    # examples/: a figure written elsewhere, or by no script, would go stale.
    assert (gallery["folder"] / figure).is_file(), figure
