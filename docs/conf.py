"""Sphinx configuration of the sklearn_vae documentation.

``make docs`` builds the whole site with the gallery executed; the test suite
(``tests/test_docs.py``) builds it with ``-D plot_gallery=0``. Both run with
``-W --keep-going``, so every warning fails the build. Nothing is fetched from
the network: there is no intersphinx, and MathJax is served from the build.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
import sklearn_vae  # noqa: E402

# The gallery's cross-references resolve IterativeImputer, which needs this import.
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401

project = "sklearn_vae"
author = "The sklearn_vae developers"
copyright = "2026, The sklearn_vae developers"  # noqa: A001
version = release = sklearn_vae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 served from the build, not a CDN
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
default_role = "literal"
nitpicky = False

# The API reference: one page per public name, generated from numpydoc docstrings.
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"
# numpydoc lists the methods in a summary table and documents each once, on the
# class page (autosummary's class template), so no object is documented twice.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# The gallery: examples/plot_*.py, executed by `make docs`, figures captured
# from matplotlib. The scripts run in examples/ (their own folder).
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),
    "matplotlib_animations": False,
    "reference_url": {"sklearn_vae": None},
    "backreferences_dir": str(DOCS / "generated" / "backreferences"),
    "doc_module": ("sklearn_vae",),
    "show_memory": False,
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_vae {release}"
templates_path = ["_templates"]
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "header_links_before_dropdown": 8,
}
html_context = {"default_mode": "light"}
html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "install": []}

# Every figure and doctest is computed on the CPU with one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
