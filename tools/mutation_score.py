"""Print the mutation score of each module `make mutate` mutated, from mutmut's results in
mutants/, and fail when a module is under its target.

Score = killed / (killed + survived). A mutant that made the tests run past mutmut's time limit
(an endless loop) counts as killed: the tests noticed. A mutant no selected test reaches counts as
survived: nothing would notice it. Mutants marked `# pragma: no mutate` (equivalent ones, each with
its reason beside it) are not generated at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the targets the issue set: redaction and the evidence's verification 90%, mitigations and
# severity 85%
TARGETS = {
    "incidentlib/redact.py": 90,
    "incidentlib/evidence/manifest.py": 90,
    "incidentlib/evidence/signing.py": 90,
    "incidentlib/evidence/storage.py": 90,
    "incidentlib/evidence/layout.py": 90,
    "incidentlib/kube/actions.py": 85,
    "incidentlib/pg/actions.py": 85,
    "incidentlib/severity.py": 85,
}
KILLED = {1, 3, 36, 24, -24, 152, 255}  # failed, pytest error, or over the time limit
SURVIVED = {0, 5, 33}  # tests passed, or no test reaches it


def score(meta: Path) -> tuple[int, int, int]:
    """(killed, survived, other) for one module's results."""
    codes = list(json.loads(meta.read_text())["exit_code_by_key"].values())
    killed = sum(1 for c in codes if c in KILLED)
    survived = sum(1 for c in codes if c in SURVIVED)
    return killed, survived, len(codes) - killed - survived


def main(root: Path = Path("mutants")) -> int:
    failed = False
    print(f"{'module':<36} {'killed':>7} {'survived':>9} {'score':>7} {'target':>7}")
    for module, target in TARGETS.items():
        meta = root / f"{module}.meta"
        if not meta.exists():
            print(f"{module:<36} not mutated (is it in [tool.mutmut] only_mutate?)")
            failed = True
            continue
        killed, survived, other = score(meta)
        pct = 100.0 * killed / (killed + survived) if killed + survived else 0.0
        below = pct < target
        failed |= below
        note = "  BELOW TARGET" if below else ""
        note += f"  ({other} not checked or suspicious)" if other else ""
        print(f"{module:<36} {killed:>7} {survived:>9} {pct:>6.1f}% {target:>6}%{note}")
    if failed:
        print("survivors: .venv/bin/mutmut results; a diff: .venv/bin/mutmut show NAME")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
