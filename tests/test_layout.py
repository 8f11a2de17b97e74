"""The layout keeps its promises: the engine has no Prefect in it, imports go one way with no loop,
tests and benchmarks never import each other, and every product module has its test module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("flows", "tasks")
#: Product modules tested where they run end to end rather than by a module of their own.
TESTED_ELSEWHERE = {"flows/demo.py": "tests/e2e/test_demo.py"}


def modules(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The modules a file imports, at any depth of its code (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", list(modules("tasks/s3")), ids=lambda p: p.name)
def test_engine_module_imports_no_prefect_when_read(path: Path) -> None:
    assert not {name for name in imported(path) if name.split(".")[0] == "prefect"}
    assert not {name for name in imported(path) if name.startswith(("flows", "tasks.record"))}


def test_product_imports_form_no_loop_when_followed() -> None:
    graph = {
        module_name(path): {name for name in imported(path) if name.split(".")[0] in PRODUCT}
        for path in modules(*PRODUCT)
    }

    def loop_from(start: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for target in sorted(graph.get(start, ())):
            if target in seen:
                return (*seen, target)
            found = loop_from(target, (*seen, target))
            if found:
                return found
        return None

    loops = [loop for name in graph if (loop := loop_from(name, (name,)))]
    assert loops == []


@pytest.mark.parametrize(
    ("packages", "forbidden"),
    [
        pytest.param(("flows", "tasks", "deployments"), ("tests", "benchmarks"), id="product"),
        pytest.param(("tests",), ("benchmarks",), id="tests"),
        pytest.param(("benchmarks",), ("tests",), id="benchmarks"),
        # `make serve` (deployments/serve.py) starts its processes with devtools; a run never.
        pytest.param(("flows", "tasks"), ("devtools",), id="runs"),
    ],
)
def test_a_part_never_imports_what_it_must_not_when_read(
    packages: tuple[str, ...], forbidden: tuple[str, ...]
) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] in forbidden
        )
        for path in modules(*packages)
    }

    assert {path: names for path, names in offending.items() if names} == {}


@pytest.mark.parametrize(
    "path",
    [p for p in modules(*PRODUCT) if p.name != "__init__.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_product_module_has_its_test_module_when_listed(path: Path) -> None:
    relative = path.relative_to(ROOT)
    expected = TESTED_ELSEWHERE.get(
        str(relative), str(Path("tests") / relative.parent / f"test_{relative.name}")
    )

    assert (ROOT / expected).is_file(), f"{relative} has no {expected}"
