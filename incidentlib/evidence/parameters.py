"""A scenario notebook's parameters: read from its `parameters` cell (with each one's help comment),
and the values given on the command line or in a YAML file coerced to the declared kinds, before any
run."""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, RunbookError


@dataclass(frozen=True)
class Param:
    """One parameter of a scenario notebook, as its parameters cell declares it."""

    name: str
    kind: str  # str | int | float | bool | list | dict | any
    nullable: bool
    default: str  # the source text of the default, e.g. '"production"'
    help: str


def scenarios(notebooks: str | os.PathLike[str]) -> dict[str, Path]:
    """The scenario notebooks in a directory: name (file stem) -> path."""
    root = Path(notebooks)
    if not root.is_dir():
        raise RunbookError(
            f"notebooks directory {str(root)!r} does not exist; pass --notebooks DIR"
        )
    return {p.stem: p for p in sorted(root.glob("*.ipynb")) if not p.name.startswith((".", "_"))}


def inspect_parameters(path: str | os.PathLike[str]) -> dict[str, Param]:
    """The parameters of a notebook, read like papermill's `inspect_notebook` (name, default, the
    comment beside it as help) but from the cell's AST, which also sees what papermill's regex skips
    (`x: int | None = None`)."""
    import nbformat

    nb = nbformat.read(os.fspath(path), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in (c.metadata.get("tags") or [])), None)
    if cell is None:
        return {}
    source = cell.source
    comments = _line_comments(source)
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise RunbookError(
            f"the parameters cell of {os.fspath(path)} is not valid Python: {e}"
        ) from None
    out: dict[str, Param] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, annotation, value = node.targets[0].id, None, node.value
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        ):
            name, annotation, value = node.target.id, ast.unparse(node.annotation), node.value
        else:
            continue
        default = ast.get_source_segment(source, value) or ast.unparse(value)
        kind, nullable = _kind(annotation, value)
        out[name] = Param(name, kind, nullable, default, comments.get(node.lineno, ""))
    return out


def _line_comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return found


_KINDS = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "list": "list",
    "dict": "dict",
}


def _kind(annotation: str | None, value: ast.expr) -> tuple[str, bool]:
    if annotation:
        parts = [
            p.strip()
            for p in re.split(r"[|,\[\]]", annotation.replace("Optional[", "None|"))
            if p.strip()
        ]
        nullable = "None" in parts
        base = next(
            (_KINDS[p.split(".")[-1].lower()] for p in parts if p.split(".")[-1].lower() in _KINDS),
            "any",
        )
        return base, nullable
    try:
        default = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError):
        return "any", True
    if default is None:
        return "any", True
    for typ, kind in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (list, "list"),
        (dict, "dict"),
    ):
        if isinstance(default, typ):
            return kind, False
    return "any", True


_TRUE = {"true", "yes", "on", "1"}


_FALSE = {"false", "no", "off", "0"}


def _coerce(p: Param, value: Any, *, from_text: bool) -> Any:
    """One value, checked against the parameter's type; text from `-p` is converted."""

    def bad(why: str) -> InvalidParameter:
        return InvalidParameter(
            f"parameter {p.name!r} = {value!r}: {why}; expected {describe_kind(p)}"
        )

    if from_text and isinstance(value, str):
        low = value.strip().lower()
        if p.kind == "str" and not (p.nullable and value.strip() in ("None", "null", "~")):
            return value  # text is text: `-p mitigation none` means the option "none"
        if low in ("none", "null", "~"):
            if p.nullable:
                return None
            raise bad("None is not allowed here")
        if p.kind == "bool":
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise bad("not a boolean")
        if p.kind == "int":
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                raise bad("not a whole number") from None
        if p.kind == "float":
            try:
                return float(value)
            except ValueError:
                raise bad("not a number") from None
        if p.kind in ("list", "dict"):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                raise bad("not valid YAML/JSON") from None
            return _coerce(p, parsed, from_text=False)
        return _resolve_any(value)
    if value is None:
        if p.nullable:
            return None
        raise bad("None is not allowed here")
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
        "any": True,
    }[p.kind]
    if not ok:
        raise bad(f"wrong type ({type(value).__name__})")
    return float(value) if p.kind == "float" else value


def _resolve_any(value: str) -> Any:
    """Like papermill's CLI: True/False/None, a number, else the text itself."""
    if value.lstrip()[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return value


def describe_kind(p: Param) -> str:
    """A parameter's type for people: 'int', 'str or None', 'any'."""
    return p.kind + (" or None" if p.nullable and p.kind != "any" else "")


def coerce_parameters(
    declared: dict[str, Param],
    given: dict[str, Any],
    *,
    from_text: set[str] | frozenset[str] = frozenset(),
    scenario: str = "notebook",
) -> dict[str, Any]:
    """Check every given parameter against the notebook's own; refuse unknown names and wrong types
    with the valid list."""
    unknown = [name for name in given if name not in declared]
    if unknown:
        valid = (
            ", ".join(f"{n} ({describe_kind(p)})" for n, p in declared.items()) or "(it takes none)"
        )
        raise InvalidParameter(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            "for scenario "
            f"{scenario!r}; valid parameters: {valid}"
        )
    return {
        name: _coerce(declared[name], value, from_text=name in from_text)
        for name, value in given.items()
    }


def check_scenario_parameters(scenario: str, params: dict[str, Any]) -> None:
    """Every parameter checked by the scenario's own rules (`incidentlib.scenarios.<name>.Params`,
    found by name) before the kernel starts: a bad namespace stops here, not in the notebook's first
    cell. A notebook without a scenario module of its own is checked in its kernel."""
    import importlib

    try:
        module = importlib.import_module(f"incidentlib.scenarios.{scenario}")
    except ImportError:
        return
    rules = getattr(module, "Params", None)
    if rules is not None and scenario != "postmortem":  # its incident comes from --incident
        rules.check(params)
