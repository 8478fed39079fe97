"""pyproject.toml declares what builder imports, and nothing it does not."""

from __future__ import annotations

import ast
import sys
import tomllib

from builder.paths import PACKAGE, REPO

# distribution -> top-level import name, where they differ
IMPORT_NAMES = {"PyYAML": "yaml", "python-debian": "debian", "cyclonedx-python-lib": "cyclonedx",
                "packageurl-python": "packageurl", "pytest-testinfra": "testinfra", "azure-identity": "azure",
                "azure-core": "azure", "azure-mgmt-core": "azure", "azure-mgmt-compute": "azure",
                "azure-mgmt-resource": "azure"}
# declared for their command line or as a plugin, not imported: ansible-playbook, pytest-testinfra's fixtures
NOT_IMPORTED = {"ansible", "pytest-testinfra", "azure-mgmt-core"}


def _declared() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = {}
    for requirement in data["project"]["dependencies"]:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip()
        names[name] = IMPORT_NAMES.get(name, name.replace("-", "_"))
    return names


def _imported() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "builder"}


def test_every_import_is_declared_and_every_declared_package_used():
    declared = _declared()
    imported = _imported()
    assert sorted(imported - set(declared.values())) == []
    unused = [name for name, module in declared.items() if module not in imported and name not in NOT_IMPORTED]
    assert unused == []
