"""Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `1G`, `1e3`) as plain numbers."""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

from .errors import InvalidParameter

_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")


def parse_quantity(value: str | int | float | None) -> Decimal | None:
    """A quantity string as a Decimal in base units (cores, bytes); None when absent or
    unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    return _parse_text(str(value))


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> Decimal | None:
    """`parse_quantity` of a string, remembered: the same few requests and limits (`100m`, `128Mi`)
    recur in every pod of a 5,000-pod list (a Decimal is immutable, so sharing one is safe)."""
    m = _QUANTITY.fullmatch(text.strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def cpu_millicores(value: str | int | float | None) -> float | None:
    """CPU in millicores (`250m` -> 250.0, `2` -> 2000.0, `1500000n` -> 1.5)."""
    q = parse_quantity(value)
    return None if q is None else float(q * 1000)


def memory_bytes(value: str | int | float | None) -> float | None:
    """Memory in bytes (`512Mi` -> 536870912.0)."""
    q = parse_quantity(value)
    return None if q is None else float(q)


def format_bytes(n: float | None, *, style: str = "kubectl") -> str:
    """Bytes as a person reads them where they are shown: `kubectl` style as `kubectl top` prints
    memory (Mi, larger ones in Gi), `postgres` style like pg_size_pretty with one decimal (1536 ->
    '1.5 kB'). Both count in powers of 1024; None and NaN are ''."""
    if n is None or n != n:  # NaN
        return ""
    if style == "kubectl":
        return f"{n / 2**30:.1f}Gi" if n >= 10 * 2**30 else f"{n / 2**20:.0f}Mi"
    if style != "postgres":
        raise ValueError(f"format_bytes style {style!r}: 'kubectl' or 'postgres'")
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def validate_memory_limit(value: object) -> str:
    """A memory limit parameter such as `1Gi` or `768Mi`: must parse and be at least 4Mi."""
    if not isinstance(value, str) or memory_bytes(value) is None:
        raise InvalidParameter(
            f"invalid memory_limit {value!r}: expected a Kubernetes memory quantity such as '1Gi' "
            "or '768Mi'"
        )
    if (memory_bytes(value) or 0) < 4 * 2**20:
        raise InvalidParameter(
            f"invalid memory_limit {value!r}: below 4Mi no container can start; e.g. '1Gi'"
        )
    return value


def validate_resource(value: object, name: str, *, cpu: bool) -> str:
    """A CPU (`1000m`, `2`) or memory (`2Gi`, `768Mi`) quantity parameter, named `name`: must parse
    and be more than nothing (at least 1m of CPU, 4Mi of memory)."""
    example = "'1000m' or '2'" if cpu else "'2Gi' or '768Mi'"
    parsed = (cpu_millicores if cpu else memory_bytes)(value) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidParameter(
            f"invalid {name} {value!r}: expected a Kubernetes {'CPU' if cpu else 'memory'} "
            f"quantity such as {example}"
        )
    if parsed < (1 if cpu else 4 * 2**20):
        raise InvalidParameter(
            f"invalid {name} {value!r}: below {'1m' if cpu else '4Mi'} no container can run; "
            f"e.g. {example}"
        )
    assert isinstance(value, str)
    return value
