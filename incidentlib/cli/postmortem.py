"""`runbook postmortem --incident ID [--outputs DIR] [--notebooks DIR]`: the post-mortem notebook of
an incident.

Checks every hash of `<outputs>/<incident>/` first and stops loudly (exit 1, the files named) if any
evidence was altered; then runs notebooks/postmortem.ipynb through the evidence archive like any
run, so the post-mortem itself lands beside the evidence with its HTML and its manifest entry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .run import add_s3_endpoint


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runbook postmortem", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--incident", required=True, help="the incident id (a directory under --outputs)"
    )
    p.add_argument(
        "--outputs",
        default=None,
        help="the evidence archive root: a folder or s3://bucket/prefix (default: "
        "$RUNBOOK_OUTPUTS or ./outputs)",
    )
    add_s3_endpoint(p)
    p.add_argument(
        "--notebooks",
        default=None,
        help="where postmortem.ipynb is (default: $RUNBOOK_NOTEBOOKS or ./notebooks)",
    )
    return p


def postmortem_main(argv: list[str]) -> int:
    """Verify the incident's evidence, then build and archive its post-mortem notebook and HTML."""
    from ..evidence.manifest import verify
    from ..evidence.run import run_notebook, validate_incident_id
    from ..evidence.storage import join, open_archive
    from .run import default_notebooks, default_outputs, outputs_location, use_s3_endpoint

    args = _parser().parse_args(argv)
    use_s3_endpoint(args)
    incident = validate_incident_id(args.incident)
    outputs = outputs_location(args.outputs or default_outputs())
    if isinstance(outputs, Path):
        outputs = outputs.resolve()
    archive = open_archive(outputs)
    incident_dir = join(outputs, incident)
    if not archive.incident(incident).exists():
        known = archive.incidents()
        print(
            f"runbook postmortem: no evidence for {incident} in {outputs}; incidents there: "
            f"{', '.join(known) or '(none)'}",
            file=sys.stderr,
        )
        return 2
    report = verify(incident_dir)
    if not report.ok:
        print(
            f"runbook postmortem: ✗ the evidence of {incident} was altered; no post-mortem is "
            "written from it:",
            file=sys.stderr,
        )
        for line in report.lines():
            print("  " + line, file=sys.stderr)
        return 1
    print(f"✓ {len(report.matching)} evidence files of {incident} match their sha256")
    notebook = Path(args.notebooks or default_notebooks()) / "postmortem.ipynb"
    if not notebook.exists():
        print(
            f"runbook postmortem: {notebook} does not exist; pass --notebooks DIR", file=sys.stderr
        )
        return 2
    result = run_notebook(
        notebook,
        outputs=outputs,
        incident=incident,
        scenario="postmortem",
        parameters={"incident_id": incident, "outputs": str(outputs)},
        progress_bar=sys.stderr.isatty(),
    )
    print(f"incident: {incident}")
    print(f"post-mortem notebook: {result.notebook}")
    if result.html is not None:
        print(f"post-mortem HTML:     {result.html}")
    if not result.ok:
        print(f"runbook postmortem: ✗ the post-mortem run failed: {result.error}", file=sys.stderr)
        return 1
    return 0
