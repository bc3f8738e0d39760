"""The layers of docs/architecture.md hold: imports only point down, only the pytest layer imports pytest, types check.

The contracts live in pyproject.toml (``[tool.importlinter]``, ``[tool.mypy]``);
these tests run the same tools CI users would, and show that a contract
can fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
# lint-imports, run by the interpreter that runs the tests (its console script may not be on PATH).
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
CATALOG = "chartpolicy.policies"


def lint_imports(cwd: Path, *extra_path: Path) -> subprocess.CompletedProcess[str]:
    env_path = ":".join(str(p) for p in extra_path)
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": env_path, "HOME": str(cwd)}
    return subprocess.run([*LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_layer_contracts_are_kept():
    result = lint_imports(ROOT, SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path):
    """A model module that imports the pytest layer is refused: the contract can fail."""
    shutil.copytree(SRC / "chartpolicy", tmp_path / "src" / "chartpolicy")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    objects = tmp_path / "src" / "chartpolicy" / "model" / "objects.py"
    objects.write_text(objects.read_text() + "\nfrom chartpolicy.pytest.session import state_of  # noqa\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0, result.stdout
    assert "chartpolicy.model is not allowed to import chartpolicy.pytest" in result.stdout
    assert "chartpolicy.model.objects -> chartpolicy.pytest.session" in result.stdout


def _catalog_imports(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [f"{path.relative_to(root)}:{node.lineno}: {name}" for name in names
                  if name == CATALOG or name.startswith(CATALOG + ".")]
    return found


def test_nothing_under_src_imports_the_catalog():
    """The catalog is the top layer; it is installed from policies/, out of import-linter's sight, so checked here."""
    offenders = [line for path in sorted(SRC.rglob("*.py")) for line in _catalog_imports(path)]
    assert offenders == []


def test_the_catalog_import_check_can_fail(tmp_path: Path):
    planted = tmp_path / "module.py"
    planted.write_text(f"from {CATALOG}.probes import probe_script\n")
    assert _catalog_imports(planted, tmp_path) == [f"module.py:1: {CATALOG}.probes"]


def test_types_check():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout


def import_cycles(package: str) -> list[str]:
    import grimp

    graph = grimp.build_graph(package, cache_dir=None)
    return sorted(f"{importer} <-> {imported}" for importer in graph.modules
                  for imported in graph.find_modules_directly_imported_by(importer)
                  if imported in graph.modules and imported != importer
                  and graph.chain_exists(importer=imported, imported=importer))


def test_there_are_no_import_cycles():
    """Not even inside a layer: an import back to a module that imports you is a cycle lazy imports would hide."""
    assert import_cycles("chartpolicy") == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path: Path, monkeypatch):
    package = tmp_path / "cyclic_example"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import cyclic_example.b\n")
    (package / "b.py").write_text("def later():\n    import cyclic_example.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("cyclic_example") == ["cyclic_example.a <-> cyclic_example.b",
                                               "cyclic_example.b <-> cyclic_example.a"]
