"""The files a user looks for exist, and they state the one version the package has."""

import re
from pathlib import Path

import sklearn_vae

ROOT = Path(__file__).resolve().parent.parent


def test_license_changelog_and_citation_exist():
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License")
    assert "The sklearn_vae developers" in license_text
    assert (ROOT / "CHANGELOG.md").is_file()
    assert (ROOT / "CITATION.cff").is_file()


def test_the_version_is_stated_in_code_once_and_the_release_files_agree():
    version = sklearn_vae.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "sklearn_vae._version.__version__"' in pyproject
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.MULTILINE).group(1) == version
    newest = re.search(r"^## Version (\S+)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert newest.group(1) == version
    sources = [p for p in (ROOT / "sklearn_vae").glob("*.py") if p.name != "_version.py"]
    for path in sources:
        assert f'"{version}"' not in path.read_text(), f"{path.name} states the version again"
