"""The package's layout: one job per module, imports pointing down, files a reader can hold.

The order is the layout table of docs/developer.md, so the table and the code
cannot drift apart.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sklearn_vae"
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 700


def layout_order():
    """Module names in the order of the developer guide's layout table."""
    table = (ROOT / "docs" / "developer.md").read_text().split("## Layout", 1)[1]
    order = []
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            order.extend(re.findall(r"`(_{1,2}\w+?_{0,2})`", first_cell))
    return order


def internal_imports(path):
    """``(module, names, is_package)`` of every relative import in ``path``, nested ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [alias.name for alias in node.names]
            if node.module is None:  # from . import x
                found.extend((name, [], True) for name in names)
            else:
                found.append((node.module, names, False))
        elif isinstance(node, ast.Import):
            found.extend(
                (alias.name.split(".", 1)[1], [], False)
                for alias in node.names
                if alias.name.startswith("sklearn_vae.")
            )
    return found


MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))


def test_the_layout_table_lists_every_module_once():
    order = layout_order()
    assert sorted(order) == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_down_the_layout(module):
    position = {name: i for i, name in enumerate(layout_order())}
    for imported, names, _ in internal_imports(PACKAGE / f"{module}.py"):
        assert imported != "__init__", f"{module} imports the package's __init__"
        assert position[imported] > position[module], f"{module} imports {imported}, above it"
        private = [name for name in names if name.startswith("_") and not name.startswith("__")]
        assert not private, f"{module} imports the private names {private} of {imported}"


@pytest.mark.parametrize("module", MODULES)
def test_modules_and_classes_stay_readable(module):
    source = (PACKAGE / f"{module}.py").read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, node.name


def test_the_checks_see_an_upward_import(tmp_path):
    # The parser finds a function-level import, the kind that hides a circle.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ._vae import _x\n    from . import _data\n")
    assert internal_imports(module) == [("_vae", ["_x"], False), ("_data", [], True)]
