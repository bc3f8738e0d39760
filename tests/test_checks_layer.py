"""chartpolicy.checks is shared domain knowledge: it depends on the object model only, and the live tier on it, not on the catalog."""

import ast
import sys
from pathlib import Path

import chartpolicy.checks
import chartpolicy.live

#: What a checks module may import besides the standard library and its own package.
ALLOWED = {"yaml", "jmespath", "chartpolicy.objects", "chartpolicy.selection", "chartpolicy.redaction",
           "chartpolicy.scenarios"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "chartpolicy"}
    return names


def allowed(name: str) -> bool:
    top = name.split(".")[0]
    return (top in sys.stdlib_module_names or name in ALLOWED or name.startswith("chartpolicy.checks")
            or name == "__future__" or any(name.startswith(a + ".") for a in ALLOWED if "." in a))


def test_checks_import_only_the_object_model_and_the_standard_library():
    modules = sorted(Path(chartpolicy.checks.__file__).parent.glob("*.py"))
    assert len(modules) > 1
    refused = {path.name: sorted(n for n in imported(path) if not allowed(n)) for path in modules}
    assert {name: names for name, names in refused.items() if names} == {}


def test_the_live_tier_does_not_import_the_catalog():
    for path in sorted(Path(chartpolicy.live.__file__).parent.glob("*.py")):
        assert not {n for n in imported(path) if n.startswith("chartpolicy.policies")}, path.name
