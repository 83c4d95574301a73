"""The house's rules, read from the code's own imports (pure: nothing is imported, only parsed).

No import cycle; the rooms import downwards only (docs/architecture.md); only `cli` imports `sim`
and `sandbox`; no module imports another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "incidentlib"
LEAVES = {"errors", "params", "severity", "redact", "quantity", "scraps", "plan"}
# room -> rooms it may import (besides the leaves and itself)
ALLOWED = {
    "kube": set(),
    "pg": {"kube"},
    "service": set(),
    "notebook": set(),
    "scenarios": {"kube", "pg", "service", "notebook", "evidence"},
    # the environment a run pointed at (context and server versions); the tables' colors
    "evidence": {"kube", "pg", "notebook"},
    "cli": {"evidence", "scenarios", "sim", "sandbox", "notebook", "serve"},
    # the alert path: runs through evidence, posts through notebook.comms
    "serve": {"evidence", "notebook"},
    "sandbox": set(),
    "sim": {"kube"},
}


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(imported module, names, at module level) for every import outside `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, list[str], bool]] = []
    type_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
        for n in ast.walk(node)
    }
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            subs = [
                f"{target}.{n}"
                for n in names
                if (PACKAGE.parent / Path(*f"{target}.{n}".split("."))).exists()
                or (PACKAGE.parent / Path(*f"{target}.{n}".split("."))).with_suffix(".py").exists()
            ]
            out += [(s, [], id(node) in top) for s in subs]
            rest = [n for n in names if f"{target}.{n}" not in subs]
            if (
                rest or not subs
            ):  # `from . import x` of a submodule x does not use the package's own names
                out.append((target, rest, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], id(node) in top) for a in node.names]
    return [(t, n, lvl) for t, n, lvl in out if t == "incidentlib" or t.startswith("incidentlib.")]


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles() -> None:
    """Function-level imports count too: a cycle hidden in a function is still a cycle."""

    def ancestor(t: str, m: str) -> bool:  # a module's own packages are always imported before it
        return m.startswith(t + ".")

    graph = {
        m: {t for t, _, _ in _imports(p) if t in MODULES and t != m and not ancestor(t, m)}
        for m, p in MODULES.items()
    }
    # a package's __init__ is imported with any of its modules: count it as part of the edge
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle.extend(stack[stack.index(t) :] + [t])
                return
            if not state.get(t):
                visit(t, [*stack, t])
            if cycle:
                return
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m) and not cycle:
            visit(m, [m])
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_rooms_import_downwards_only(module: str) -> None:
    room = _room(module)
    if module == "incidentlib":  # the package's front door re-exports the evidence contract's Run
        allowed = LEAVES | {"", "notebook"}
    elif room in LEAVES:
        allowed = LEAVES | {""}
    else:
        allowed = LEAVES | ALLOWED[room] | {room, ""}
    for target, _, _ in _imports(MODULES[module]):
        assert _room(target) in allowed, f"{module} imports {target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(module: str) -> None:
    for target, names, _ in _imports(MODULES[module]):
        private = [n for n in names if n.startswith("_") and n != "__version__"]
        assert not private, f"{module} imports {private} from {target}"
