"""The layers the README's architecture section draws, checked on the source tree.

A request goes down the layers and never back up: the HTTP surfaces (api,
dashboard, monitoring) may use the engine (operations), the engine knows
nothing of HTTP, and the load checker knows nothing of the service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("coordhub", "operations", "api", "monitoring", "dashboard", "loadcheck")
HTTP_SURFACES = ("api", "monitoring", "dashboard")
PYTHON_LINES = 350
BROWSER_LINES = 300


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or "testing" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = product_modules()


def imported_names(path: Path) -> set[str]:
    """Every module `path` imports, at the top, inside functions or under TYPE_CHECKING."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def product_imports(name: str) -> set[str]:
    """The product modules that module `name` imports."""
    found = set()
    for imported in imported_names(MODULES[name]):
        while imported and imported not in MODULES:
            imported = imported.rpartition(".")[0]
        if imported and imported != name:
            found.add(imported)
    return found


def in_package(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def test_no_product_module_imports_itself_back_through_others():
    graph = {name: product_imports(name) for name in MODULES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in graph[start]:
            if step == goal or (step not in seen and reaches(step, goal, seen | {step})):
                return True
        return False

    assert [name for name in graph if reaches(name, name, {name})] == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if in_package(n, "operations")))
def test_the_engine_knows_nothing_of_http(name):
    http = [n for n in imported_names(MODULES[name]) if in_package(n, "django.http")]

    assert [n for n in product_imports(name) if in_package(n, *HTTP_SURFACES, "loadcheck")] == []
    # The admin is Django's own page over the engine; nothing else handles a request.
    assert http == [] or name == "operations.admin"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if in_package(n, "api")))
def test_the_http_layer_knows_nothing_of_the_surfaces_built_on_it(name):
    assert [n for n in product_imports(name) if in_package(n, "dashboard", "monitoring")] == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if in_package(n, "loadcheck")))
def test_the_load_checker_imports_nothing_of_the_service(name):
    outside = [n for n in product_imports(name) if not in_package(n, "loadcheck")]
    django = [n for n in imported_names(MODULES[name]) if in_package(n, "django")]

    assert (outside, django) == ([], [])


def test_no_app_imports_another_apps_views():
    crossing = [
        (name, imported)
        for name in MODULES
        for imported in product_imports(name)
        if imported.endswith(".views")
        and imported.split(".")[0] != name.split(".")[0]
        and not in_package(name, "coordhub")  # the URL configuration routes to every app
    ]

    assert crossing == []


def test_modules_stay_small_or_say_why():
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path, limit in [
            *((path, PYTHON_LINES) for path in MODULES.values()),
            *((path, BROWSER_LINES) for path in ROOT.glob("*/static/**/*.js")),
        ]
        if (lines := len(path.read_text().splitlines())) > limit * 1.05
        and "Longer than" not in path.read_text()[:600]
    ]

    assert too_long == []
