"""The house's layout: each room imports only the rooms below it, and no module imports itself round a circle.

Every import counts, also those inside functions and under TYPE_CHECKING: a circle through either is still a
circle in the design.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

from core.settings import PROJECT_ROOT
from tests.support.layout import ROOMS


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for room in ROOMS:
        for path in sorted((PROJECT_ROOT / room).rglob("*.py")):
            name = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> Iterator[str]:
    """The project modules a file imports (`from a import b` is module a.b when there is one, else a)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in known:
            for alias in node.names:
                yield f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imports(path, set(found))) - {name} for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_itself_round_a_circle() -> None:
    assert circles(graph()) == []


def test_each_room_imports_only_the_rooms_below_it() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if (room := module.split(".")[0]) != (other := target.split(".")[0]) and other not in ROOMS[room]
    )
    assert upward == []


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "core.settings" in edges and "stream_app.app" in edges, "the graph reads the project's modules"
    assert any(t.startswith("registry") for t in edges["stream_app.app"]), "imports are found"


def test_every_room_is_a_package_the_build_and_the_type_checker_know() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == set(ROOMS)
    assert set(pyproject["tool"]["mypy"]["packages"]) == set(ROOMS)
    for room in ROOMS:
        assert (PROJECT_ROOT / room / "__init__.py").is_file(), room
        assert f"COPY {room} ./{room}" in dockerfile, room
