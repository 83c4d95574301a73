"""Label and field selectors, parsed the way the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable

Predicate = Callable[[dict], bool]


class SelectorError(ValueError):
    """A selector that does not parse; the message says which part."""


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\((.*)\)$")
_CMP = re.compile(r"^([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)$")
_KEY = re.compile(r"^(!?)([A-Za-z0-9_./-]+)$")


def _eq(key: str, value: str) -> Predicate:
    return lambda labels: labels.get(key) == value


def _in(key: str, values: set[str]) -> Predicate:
    return lambda labels: labels.get(key) in values


def _has(key: str) -> Predicate:
    return lambda labels: key in labels


def _not(pred: Predicate) -> Predicate:
    return lambda x: not pred(x)


def _field_eq(path: str, value: str) -> Predicate:
    return lambda obj: field_value(obj, path) == value


def parse_labels(text: str | None) -> Predicate:
    """A predicate on a labels dict for a label selector (=, ==, !=, in, notin, key, !key)."""
    if not text:
        return lambda labels: True
    tests: list[Predicate] = []
    for part in _split_top(text):
        if m := _SET.match(part):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(_in(key, values))
            else:
                tests.append(_not(_in(key, values)))
        elif m := _CMP.match(part):
            key, op, value = m.groups()
            if op == "!=":
                tests.append(_not(_eq(key, value)))
            else:
                tests.append(_eq(key, value))
        elif m := _KEY.match(part):
            neg, key = m.groups()
            if neg:
                tests.append(_not(_has(key)))
            else:
                tests.append(_has(key))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return lambda labels: all(t(labels) for t in tests)


def field_value(obj: dict, path: str) -> str:
    """The string value at a dotted field path ('' when missing)."""
    cur: object = obj
    for step in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(step)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


SUPPORTED_FIELDS = {
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "spec.schedulerName",
    "spec.restartPolicy",
    "status.podIP",
    "spec.unschedulable",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "type",
    "source",
    "reportingComponent",
    "status.replicas",
}


def parse_fields(text: str | None) -> Predicate:
    """A predicate on an object for a field selector (=, ==, != on supported fields)."""
    if not text:
        return lambda obj: True
    tests: list[Predicate] = []
    for part in _split_top(text):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        path, op, value = m.groups()
        if path not in SUPPORTED_FIELDS:
            raise SelectorError(f"field label not supported: {path}")
        if path == "source":
            path = "source.component"
        if op == "!=":
            tests.append(_not(_field_eq(path, value)))
        else:
            tests.append(_field_eq(path, value))
    return lambda obj: all(t(obj) for t in tests)
