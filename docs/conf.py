"""Sphinx configuration of the sklearn_vae documentation.

``make docs`` builds the whole site with the gallery executed; the test suite
(``tests/test_docs.py``) builds it with ``-D plot_gallery=0``. Both run with
``-W --keep-going``, so every warning fails the build. ``tests/test_examples.py``
runs the gallery's scripts through sphinx-gallery with this file's
``sphinx_gallery_conf``. Nothing is fetched from the network: there is no
intersphinx, and MathJax is served from the build.
"""

import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS))
# The gallery's cross-references resolve IterativeImputer, which needs this import.
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401

import sklearn_vae  # noqa: E402

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
# _benchmarks/ holds the generated tables that benchmarks.md includes, not pages.
exclude_patterns = [
    "_build",
    "_benchmarks",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
]
default_role = "literal"
nitpicky = False

# The API reference: one page per public name, generated from numpydoc docstrings.
autosummary_generate = True
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
# from matplotlib. sphinx-gallery runs each script's blocks with the script's
# folder as working directory and without ``__file__``; the scripts write
# their PNGs there, so they run from a copy under _build/ (made in ``setup``):
# the committed figures of `make examples` stay untouched. Unchanged scripts
# are not run again (sphinx-gallery's MD5s of the copies).
EXAMPLES = DOCS / "_build" / "examples"
sphinx_gallery_conf = {
    "examples_dirs": str(EXAMPLES),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ReadingOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),
    "matplotlib_animations": False,
    "backreferences_dir": str(DOCS / "generated" / "backreferences"),
    "doc_module": ("sklearn_vae",),
    "show_memory": False,
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_vae {release}"
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # The API and gallery pages need the width for signatures and code.
    "secondary_sidebar_items": {
        "*": ["page-toc"],
        "generated/*": [],
        "auto_examples/*": [],
    },
    "header_links_before_dropdown": 8,
}
html_context = {"default_mode": "light"}
html_sidebars = {"index": [], "benchmarks": []}


# Methods inherited from scikit-learn (get_metadata_routing, set_output) cite
# labels of scikit-learn's own site. Without intersphinx (the build is offline)
# they are written as plain links to that site instead.
SKLEARN_SITE = "https://scikit-learn.org/stable/"
SKLEARN_PAGES = {
    "metadata_routing": "metadata_routing.html",
    "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": (
        "auto_examples/miscellaneous/plot_set_output.html"
    ),
}
SKLEARN_REF = re.compile(r":ref:`([^`<]*?)\s*(?:<([^`>]+)>)?`")


def _link_to_sklearn(match):
    text, label = match.group(1), match.group(2)
    if label is None:
        text, label = "scikit-learn's example", text
    page = SKLEARN_PAGES.get(label, "user_guide.html")
    return f"`{text} <{SKLEARN_SITE}{page}>`__"


def link_sklearn_references(app, what, name, obj, options, lines):
    if (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        lines[:] = [SKLEARN_REF.sub(_link_to_sklearn, line) for line in lines]


def copy_examples():
    """A fresh copy of examples/, without figures, for the gallery to run."""
    shutil.rmtree(EXAMPLES, ignore_errors=True)
    shutil.copytree(
        DOCS.parent / "examples", EXAMPLES, ignore=shutil.ignore_patterns("*.png")
    )


def setup(app):
    copy_examples()
    app.connect("autodoc-process-docstring", link_sklearn_references)
