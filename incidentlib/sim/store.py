"""The object store: objects indexed by resource and namespace, serialized once per change, with a
bounded history of changes for watches."""

from __future__ import annotations

import collections
import copy
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from .resources import Resource

WATCH_HISTORY = 50_000


def dumps(obj: object) -> bytes:
    """Compact JSON bytes, the one serialization of an object."""
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Entry:
    """One stored object with its serialized form."""

    obj: dict
    raw: bytes


@dataclass
class Change:
    """One watch event: ADDED, MODIFIED or DELETED."""

    rv: int
    type: str
    key: str
    namespace: str
    entry: Entry


class Gone(Exception):
    """A watch asked to resume from a resourceVersion older than the history kept."""


def rkey(res: Resource) -> str:
    """The store key of a resource type."""
    return f"{res.group}/{res.plural}"


class Store:
    """Thread-safe object store. Writers hold `lock`; readers get serialized bytes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1000
        self._data: dict[str, dict[str, dict[str, Entry]]] = collections.defaultdict(dict)
        self._history: collections.deque[Change] = collections.deque(maxlen=WATCH_HISTORY)
        self.pinned_status: set[str] = set()
        self.key_rv: dict[str, int] = collections.defaultdict(int)  # last change per type

    # --- reads -----------------------------------------------------------------------------
    def get(self, key: str, namespace: str, name: str) -> Entry | None:
        """The entry or None."""
        with self.lock:
            return self._data[key].get(namespace, {}).get(name)

    def entries(self, key: str, namespace: str | None = None) -> list[Entry]:
        """A snapshot of the entries of a type, one namespace or all, sorted by namespace/name."""
        with self.lock:
            spaces = self._data[key]
            if namespace is not None:
                bucket = spaces.get(namespace, {})
                return [bucket[n] for n in sorted(bucket)]
            return [spaces[ns][n] for ns in sorted(spaces) for n in sorted(spaces[ns])]

    def objects(self, key: str, namespace: str | None = None) -> Iterator[dict]:
        """The objects of a type (live references: do not mutate outside the lock)."""
        for e in self.entries(key, namespace):
            yield e.obj

    def count(self, key: str) -> int:
        with self.lock:
            return sum(len(b) for b in self._data[key].values())

    # --- writes ----------------------------------------------------------------------------
    def _record(self, kind: str, key: str, namespace: str, entry: Entry) -> None:
        self.key_rv[key] = self.rv
        self._history.append(Change(self.rv, kind, key, namespace, entry))
        self.changed.notify_all()

    def put(self, key: str, obj: dict, *, created: bool | None = None) -> Entry:
        """Store obj (a new dict owned by the store), bumping resourceVersion."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "")
            bucket = self._data[key].setdefault(ns, {})
            existed = meta["name"] in bucket
            meta.setdefault("uid", str(uuid.uuid4()))
            self.rv += 1
            meta["resourceVersion"] = str(self.rv)
            entry = Entry(obj, dumps(obj))
            bucket[meta["name"]] = entry
            self._record("MODIFIED" if existed else "ADDED", key, ns, entry)
            return entry

    def load(self, key: str, objs: list[dict]) -> None:
        """Bulk-load seeded objects (one resourceVersion each, no watch history)."""
        with self.lock:
            spaces = self._data[key]
            for obj in objs:
                meta = obj["metadata"]
                meta.setdefault("uid", str(uuid.uuid4()))
                self.rv += 1
                meta["resourceVersion"] = str(self.rv)
                spaces.setdefault(meta.get("namespace", ""), {})[meta["name"]] = Entry(
                    obj, dumps(obj)
                )
            self.key_rv[key] = self.rv

    def delete(self, key: str, namespace: str, name: str) -> Entry | None:
        """Remove and return the entry (None when absent)."""
        with self.lock:
            bucket = self._data[key].get(namespace, {})
            entry = bucket.pop(name, None)
            if entry is None:
                return None
            self.rv += 1
            obj = copy.deepcopy(entry.obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            gone = Entry(obj, dumps(obj))
            self.pinned_status.discard(obj["metadata"].get("uid", ""))
            self._record("DELETED", key, namespace, gone)
            return gone

    # --- watch -----------------------------------------------------------------------------
    def changes_since(self, rv: int) -> list[Change]:
        """The changes after rv; raises Gone when rv is older than the history kept."""
        with self.lock:
            full = len(self._history) == self._history.maxlen
            if full and rv < self._history[0].rv - 1:
                raise Gone(f"too old resource version: {rv} ({self._history[0].rv})")
            return [c for c in self._history if c.rv > rv]
