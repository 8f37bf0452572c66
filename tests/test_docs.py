"""The documentation site builds without a warning, and documents every public name.

``make docs`` builds the full site with the gallery executed (several minutes).
Here the same sources are built without running the gallery
(``-D plot_gallery=0``): the API pages, the user guide and the gallery's text
still build, so a broken docstring, reference or page fails the suite.
``tests/test_examples.py`` runs the gallery's scripts through sphinx-gallery.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_vae

pytest.importorskip("sphinx", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst")


def api_page_names():
    """The names listed in the autosummary blocks of docs/api.rst."""
    names = []
    for block in (ROOT / "docs" / "api.rst").read_text().split(".. autosummary::")[1:]:
        for line in block.splitlines()[1:]:
            if line.startswith("   ") and not line.strip().startswith(":"):
                names.append(line.strip())
            elif line and not line.startswith(" "):
                break
    return names


def test_api_reference_lists_every_public_name_once():
    listed = api_page_names()
    missing = sorted(set(sklearn_vae.__all__) - set(listed))
    assert not missing, f"add {missing} to an autosummary block of docs/api.rst"
    assert sorted(listed) == sorted(sklearn_vae.__all__)


def test_every_example_opens_with_a_titled_docstring():
    # sphinx-gallery makes each script's docstring title its page title.
    for script in sorted((ROOT / "examples").glob("plot_*.py")):
        docstring = ast.get_docstring(ast.parse(script.read_text()))
        assert docstring, script.name
        assert docstring.splitlines()[0].startswith("==="), script.name


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    # Build from a copy, so the test neither needs nor touches the generated
    # folders of a full `make docs` in the work tree.
    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "docs", work / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("*.png"))
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-D", "plot_gallery=0", "-d", str(work / "doctrees")]
    command += [str(work / "docs"), str(work / "html")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    return work / "html"


def test_docs_build_without_warnings(built_site):
    for page in ("index", "install", "model", "units", "tables", "benchmarks", "api"):
        assert (built_site / f"{page}.html").is_file(), page


def test_every_public_name_has_its_api_page(built_site):
    for name in sklearn_vae.__all__:
        page = built_site / "generated" / f"sklearn_vae.{name}.html"
        assert page.is_file(), name
        # A warning class takes no parameters; its page shows how to use it.
        is_warning = isinstance(getattr(sklearn_vae, name), type) and issubclass(
            getattr(sklearn_vae, name), Warning
        )
        assert ("Examples" if is_warning else "Parameters") in page.read_text(), name


def test_every_example_has_its_gallery_page(built_site):
    for script in sorted((ROOT / "examples").glob("plot_*.py")):
        assert (built_site / "auto_examples" / f"{script.stem}.html").is_file(), script.name
