"""The package's layering: each subpackage imports only what its `__init__` docstring allows.

Every subpackage states a line `May import: a, b, c.` (or `nothing else of darklens`); this test
reads every import of every module (ast, including imports inside functions) and fails on an
arrow that runs the wrong way, and on any import of the command line from inside the package.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "workflow" / "darklens"
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
TOP_LEVEL_MODULES = {"config"}  # importable from any layer: it imports nothing of darklens


def allowed_imports(subpackage: str) -> set[str]:
    doc = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text()))
    match = re.search(r"May import: ([^.(]*)", doc or "")
    assert match, f"darklens.{subpackage}: its docstring has no 'May import:' line"
    text = match.group(1).strip()
    if text.startswith("nothing"):
        return set()
    return {name.strip() for name in text.split(",")}


def darklens_imports(path: Path) -> set[str]:
    """The first component below `darklens` of every module `path` imports."""
    found = set()
    module_parts = path.relative_to(PACKAGE).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = module_parts[: len(module_parts) - node.level]
                names = [".".join(("darklens", *base, node.module or ""))]
            else:
                names = [node.module or ""]
                if node.module == "darklens":
                    names = [f"darklens.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "darklens" and len(parts) > 1 and parts[1]:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_subpackage_imports_only_what_it_may(subpackage):
    allowed = allowed_imports(subpackage) | {subpackage} | TOP_LEVEL_MODULES
    unknown = allowed - set(SUBPACKAGES) - TOP_LEVEL_MODULES
    assert not unknown, f"darklens.{subpackage} allows imports of unknown parts {unknown}"
    allowed -= {"config"} if subpackage in ("physics", "io") else set()
    wrong = {}
    for path in (PACKAGE / subpackage).rglob("*.py"):
        names = darklens_imports(path)
        # CLASS_NAMES and __version__ live in darklens/__init__.py and are not a layer
        bad = {n for n in names if n not in allowed and n not in ("CLASS_NAMES", "__version__")}
        if bad:
            wrong[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert not wrong, f"imports against the layering of darklens.{subpackage}: {wrong}"


def test_nothing_imports_the_command_line():
    importers = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("cli.py", "__main__.py") and "cli" in darklens_imports(path)
    ]
    assert not importers


def test_layering_check_sees_a_wrong_arrow(tmp_path, monkeypatch):
    """The check itself fails on a physics module that imports learning."""
    fake = tmp_path / "darklens"
    (fake / "physics").mkdir(parents=True)
    (fake / "physics" / "__init__.py").write_text('"""May import: nothing else of darklens."""\n')
    (fake / "physics" / "bad.py").write_text("def f():\n    from darklens.learning import x\n")
    (fake / "learning").mkdir()
    (fake / "learning" / "__init__.py").write_text('"""May import: physics."""\n')
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    assert darklens_imports(fake / "physics" / "bad.py") == {"learning"}
    with pytest.raises(AssertionError, match="learning"):
        test_subpackage_imports_only_what_it_may("physics")


def test_features_sit_below_learning():
    """Training and prediction build their channels with darklens.features, never the reverse."""
    assert "features" in allowed_imports("learning")
    assert "learning" not in allowed_imports("features")
