"""`runbook run`, `list`, `verify` and `keygen`: the command line of the evidence archive.

    runbook run outage -p namespace production -p since 2h --incident INC-20261127-0935-ab12
    runbook list
    runbook verify outputs/INC-20261127-0935-ab12 [--public-key keys/signing.pub]
    runbook verify s3://bucket/prefix/INC-20261127-0935-ab12 [--s3-endpoint-url URL]
    runbook keygen keys/

Parameters, their defaults and help come from each notebook's own parameters cell; a bad one is
refused before anything runs, with the list of what is valid."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, RunbookError
from ..evidence.manifest import read_scraps, verify
from ..evidence.parameters import (
    check_scenario_parameters,
    coerce_parameters,
    describe_kind,
    inspect_parameters,
    scenarios,
)
from ..evidence.run import (
    RunResult,
    new_incident_id,
    run_notebook,
    unread_sources,
    validate_incident_id,
)
from ..evidence.signing import ENV, generate, load_private, load_public
from ..evidence.storage import ENDPOINT_ENV, is_s3


def default_notebooks() -> Path:
    """$RUNBOOK_NOTEBOOKS, else ./notebooks, else the notebooks/ beside the installed package (a
    source checkout)."""
    env = os.environ.get("RUNBOOK_NOTEBOOKS")
    if env:
        return Path(env)
    here = Path("notebooks")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "notebooks"  # incidentlib/cli/run.py -> checkout


def default_outputs() -> Path | str:
    """$RUNBOOK_OUTPUTS, else ./outputs (a folder, or an s3://bucket/prefix URL)."""
    return outputs_location(os.environ.get("RUNBOOK_OUTPUTS") or "outputs")


def outputs_location(text: str | Path) -> Path | str:
    """An archive root as given: an s3:// URL stays a URL (a Path would eat one of its slashes)."""
    return text if is_s3(text) else Path(text)


def add_s3_endpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--s3-endpoint-url",
        metavar="URL",
        default=None,
        help="an S3-compatible store's endpoint for s3:// evidence (MinIO, Ceph...; default: "
        f"${ENDPOINT_ENV}, else AWS); credentials the AWS way: environment, profile, IRSA",
    )


def add_outputs(p: argparse.ArgumentParser) -> None:
    """--outputs (a folder or s3://bucket/prefix) and --s3-endpoint-url."""
    p.add_argument(
        "--outputs",
        metavar="DIR",
        type=outputs_location,
        default=None,
        help="archive root: a folder, or s3://bucket/prefix (default: $RUNBOOK_OUTPUTS, else "
        "./outputs)",
    )
    add_s3_endpoint(p)


def use_s3_endpoint(args: argparse.Namespace) -> None:
    """`--s3-endpoint-url` for this process and the kernels it starts (boto3 reads
    AWS_ENDPOINT_URL_S3)."""
    url = getattr(args, "s3_endpoint_url", None)
    if url:
        if not url.startswith(("http://", "https://")):
            raise InvalidParameter(f"--s3-endpoint-url {url!r} must be an http(s):// URL")
        os.environ[ENDPOINT_ENV] = url


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="runbook run",
        description="Execute a scenario notebook with papermill and archive the evidence "
        "(executed notebook, self-contained HTML, manifest with sha256).",
        epilog="`runbook list` shows the scenarios and their parameters. Keep passwords out of "
        "-p: use "
        "PGPASSWORD, ~/.pgpass or a service file (a password in -p dsn is moved to PGPASSWORD for "
        "the kernel "
        "and masked in the evidence).",
    )
    p.add_argument(
        "scenario", help="scenario name (a notebook in --notebooks, e.g. outage, database)"
    )
    add_parameter_options(p, "a notebook parameter")
    p.add_argument("--incident", metavar="ID", help="incident id (default: a new one, printed)")
    add_outputs(p)
    p.add_argument(
        "--notebooks",
        metavar="DIR",
        type=Path,
        default=None,
        help="scenario notebooks (default: ./notebooks)",
    )
    p.add_argument(
        "--cell-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=600.0,
        help="a cell running longer than this fails the run (default 600)",
    )
    p.add_argument("--no-html", action="store_true", help="skip the HTML export")
    p.add_argument(
        "--signing-key",
        metavar="FILE",
        default=None,
        help="sign the manifest entry with this Ed25519 key (`runbook keygen`; default: the file "
        "$RUNBOOK_SIGNING_KEY names, else unsigned)",
    )
    return p


def add_parameter_options(p: argparse.ArgumentParser, what: str) -> None:
    """`-p NAME VALUE` (repeatable) and `-f FILE`, as every command that runs notebooks takes
    them (`given_parameters` reads them)."""
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        default=[],
        help=f"{what} (repeatable); the value is converted to the parameter's type",
    )
    p.add_argument(
        "-f", "--parameters-file", metavar="FILE", help="YAML file of parameters (-p wins over it)"
    )


def given_parameters(args: argparse.Namespace) -> tuple[dict[str, Any], set[str]]:
    """The -f file's values, then the -p ones over them; and the names given as text (-p)."""
    given: dict[str, Any] = {}
    if args.parameters_file:
        given.update(load_yaml_params(args.parameters_file))
    text_names = set()
    for name, value in args.parameter:
        given[name] = value
        text_names.add(name)
    return given, text_names


def _seconds(text: str) -> float:
    """A timeout in seconds: a finite number above zero, at most a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86_400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def check_outputs(outputs: Path | str) -> Path | str:
    """The archive root must be a directory we can write (or one we can create), or an s3:// URL
    (its bucket and credentials are met at the first write)."""
    if isinstance(outputs, str):
        from ..evidence.storage import open_archive

        open_archive(outputs)  # a malformed URL is refused here, before anything runs
        return outputs
    if outputs.exists() and not outputs.is_dir():
        raise InvalidParameter(
            f"--outputs {os.fspath(outputs)!r} is a file, not a directory; "
            "give the archive's folder (default ./outputs)"
        )
    parent = (
        outputs
        if outputs.exists()
        else next((p for p in outputs.resolve().parents if p.exists()), Path("/"))
    )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidParameter(
            f"--outputs {os.fspath(outputs)!r}: {os.fspath(parent)} is not "
            "writable; give a folder you may write"
        )
    return outputs


def load_yaml_params(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise InvalidParameter(f"parameters file {path!r} cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InvalidParameter(f"parameters file {path!r} is not valid YAML: {e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise InvalidParameter(
            f"parameters file {path!r} must be a mapping of parameter names to values"
        )
    return doc


def prepare(args: argparse.Namespace) -> tuple[Path, str, dict[str, Any], str, Path | str]:
    """Check everything before anything runs: scenario, parameters (names and types), incident
    id."""
    use_s3_endpoint(args)
    notebooks = args.notebooks or default_notebooks()
    found = scenarios(notebooks)
    if args.scenario not in found:
        raise InvalidParameter(
            f"unknown scenario {args.scenario!r}; valid scenarios (in {notebooks}): "
            f"{', '.join(found) or '(none)'}"
        )
    path = found[args.scenario]
    declared = inspect_parameters(path)
    given, text_names = given_parameters(args)
    params = coerce_parameters(declared, given, from_text=text_names, scenario=args.scenario)
    check_scenario_parameters(args.scenario, params)
    incident = validate_incident_id(args.incident) if args.incident else new_incident_id()
    outputs = check_outputs(args.outputs or default_outputs())
    return path, args.scenario, params, incident, outputs


def execute(
    args: argparse.Namespace, *, progress_bar: bool | None = None, echo: bool = True
) -> RunResult:
    """The path every run takes (`runbook run` and `runbook demo`): check, execute, archive,
    report."""
    path, scenario, params, incident, outputs = prepare(args)
    if echo:
        print(f"incident: {incident}", flush=True)
        print(f"running {scenario} ({path}) ...", flush=True)
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    result = run_notebook(
        path,
        outputs=outputs,
        incident=incident,
        parameters=params,
        scenario=scenario,
        cell_timeout=args.cell_timeout,
        progress_bar=progress_bar,
        html=not args.no_html,
        signing_key=load_private(getattr(args, "signing_key", None)),
    )
    if echo:
        print_result(result)
    return result


def print_result(result: RunResult) -> None:
    """What a person needs after a run: status, severity, what could not be read, where the
    evidence is."""
    mark = {"ok": "✓", "incomplete": "⚠"}.get(result.status, "✗")
    line = f"{mark} {result.scenario}: {result.status}"
    try:
        scraps = read_scraps(result.notebook, names=("severity", "sources"))
    except Exception:  # a run that died early may have no scraps
        scraps = {}
    sev = scraps.get("severity")
    if isinstance(sev, dict) and sev.get("level"):
        line += f"  severity {sev['level']}: {sev.get('reason', '')}"
    print(line)
    for s in unread_sources(scraps.get("sources")):
        print(f"  ✗ not read: {s}")
    print(f"  notebook: {result.notebook}")
    if result.html is not None:
        print(f"  html:     {result.html}")
    print(f"  manifest: {result.incident_dir}/manifest.json", flush=True)
    if result.status == "incomplete":
        print(
            f"runbook run: {result.scenario} ran to the end without every source (listed above); "
            "its verdict rests on what was read",
            file=sys.stderr,
            flush=True,
        )
    elif not result.ok:
        print(
            f"runbook run: {result.scenario} failed at {result.error}", file=sys.stderr, flush=True
        )


def run_main(argv: list[str]) -> int:
    """`runbook run SCENARIO [-p NAME VALUE]... [-f params.yaml] [--incident ID] [--outputs
    DIR]`."""
    args = run_parser().parse_args(argv)
    try:
        result = execute(args)
    except KeyboardInterrupt as e:
        partial = e.args[0] if e.args and isinstance(e.args[0], RunResult) else None
        if partial is not None:
            print(f"interrupted: what ran is archived in {partial.notebook}", file=sys.stderr)
        raise
    return {"ok": 0, "incomplete": 3}.get(result.status, 1)


def list_main(argv: list[str]) -> int:
    """`runbook list [--notebooks DIR]`: every scenario with its parameters, types, defaults and
    help."""
    p = argparse.ArgumentParser(
        prog="runbook list", description="List the scenarios and their parameters."
    )
    p.add_argument(
        "--notebooks",
        metavar="DIR",
        type=Path,
        default=None,
        help="scenario notebooks (default: ./notebooks)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="names only")
    args = p.parse_args(argv)
    notebooks = args.notebooks or default_notebooks()
    found = scenarios(notebooks)
    if not found:
        print(f"no scenario notebooks in {notebooks}")
        return 1
    for name, path in found.items():
        if args.quiet:
            print(name)
            continue
        print(f"{name}  ({path})")
        declared = inspect_parameters(path)
        width = max((len(n) for n in declared), default=0)
        for pname, param in declared.items():
            default = param.default if len(param.default) <= 24 else param.default[:23] + "…"
            print(
                f"  {pname:<{width}}  {describe_kind(param):<12} default {default:<24} {param.help}"
            )
        print()
    return 0


def verify_main(argv: list[str]) -> int:
    """`runbook verify outputs/<incident>`: recompute every hash; non-zero when anything changed,
    went or came."""
    p = argparse.ArgumentParser(
        prog="runbook verify", description="Recompute every sha256 of an incident's evidence."
    )
    p.add_argument(
        "incident_dir",
        type=outputs_location,
        help="the incident: its folder (outputs/INC-20261127-0935-ab12) or its s3:// URL "
        "(s3://bucket/prefix/INC-20261127-0935-ab12)",
    )
    add_s3_endpoint(p)
    p.add_argument(
        "--public-key",
        metavar="FILE",
        default=None,
        help="check every run's signature with this public key (signing.pub of `runbook keygen`)",
    )
    args = p.parse_args(argv)
    use_s3_endpoint(args)
    if isinstance(args.incident_dir, Path) and not args.incident_dir.is_dir():
        raise RunbookError(f"{args.incident_dir} is not a directory; pass outputs/<incident>")
    public = load_public(args.public_key) if args.public_key else None
    report = verify(args.incident_dir, public_key=public)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def keygen_main(argv: list[str]) -> int:
    """`runbook keygen DIR`: DIR/signing.key (private, mode 600) and DIR/signing.pub."""
    p = argparse.ArgumentParser(
        prog="runbook keygen",
        description="Make an Ed25519 key pair: runs signed with the private key (`runbook run "
        "--signing-key`, $RUNBOOK_SIGNING_KEY) can be checked with the public one (`runbook verify "
        "--public-key`).",
    )
    p.add_argument("directory", type=Path, help="where to write signing.key and signing.pub")
    args = p.parse_args(argv)
    key, pub = generate(args.directory)
    print(
        f"private key: {key} (mode 600: keep it where the runbooks run, e.g. a Kubernetes Secret)"
    )
    print(f"public key:  {pub} (give it to whoever verifies the evidence)")
    print(f"sign runs:   export {ENV}={key}")
    print(f"check them:  runbook verify outputs/<incident> --public-key {pub}")
    return 0
