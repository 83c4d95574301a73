"""`runbook lab`: JupyterLab on the scenario notebooks, after saying what they will read.

A notebook opened live reads what its parameters say, and parameters left at None mean "like kubectl
and psql do": the current kubeconfig context, the PG* variables. Before JupyterLab starts, this says
which cluster, database and service that is on this machine, and how to point them elsewhere, so
nobody runs a runbook against the wrong cluster at 3 a.m. Nothing is contacted: the kubeconfig and
the environment are only read."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import RunbookError


def cluster_line(environ: Mapping[str, str]) -> str:
    """Which cluster the notebooks reach with kubeconfig=None and context=None."""
    import yaml

    paths = environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    merged: dict[str, list[dict]] = {"contexts": [], "clusters": []}
    current = None
    found = []
    for path in (p for p in paths.split(os.pathsep) if p):
        try:
            doc = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as e:
            return f"cluster   {path} cannot be read ({type(e).__name__}): fix it or set KUBECONFIG"
        found.append(path)
        current = current or doc.get("current-context")
        for key in merged:
            merged[key] += [e for e in doc.get(key) or [] if isinstance(e, dict)]
    if not found:
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return "cluster   in-cluster service account (no kubeconfig)"
        return (
            "cluster   none: no kubeconfig at "
            f"{paths}; set KUBECONFIG or the notebooks' kubeconfig parameter"
        )
    context = next((c for c in merged["contexts"] if c.get("name") == current), None)
    if context is None:
        return (
            f"cluster   {', '.join(found)} has no current context ({current!r}): "
            "`kubectl config use-context NAME` or the notebooks' context parameter"
        )
    cluster_name = (context.get("context") or {}).get("cluster")
    cluster = next((c for c in merged["clusters"] if c.get("name") == cluster_name), {})
    server = (cluster.get("cluster") or {}).get("server", "?")
    return f"cluster   context {current!r} -> {server}  (from {', '.join(found)})"


def database_line(environ: Mapping[str, str]) -> str:
    """Which database the database notebook reaches with dsn=None (libpq's own variables)."""
    if environ.get("PGSERVICE"):
        return f"database  service {environ['PGSERVICE']!r} (PGSERVICE; pg_service.conf)"
    keys = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER")
    given = {k: environ[k] for k in keys if environ.get(k)}
    if not given:
        return (
            "database  none set: no PG* variables, so libpq's defaults (the local socket, a "
            "database named like your user); set PGHOST, PGPORT, PGDATABASE, PGUSER or the dsn "
            "parameter"
        )
    host = given.get("PGHOST", "local socket")
    port = given.get("PGPORT", "5432")
    password = (
        "password from PGPASSWORD"
        if environ.get("PGPASSWORD")
        else "password from ~/.pgpass, if any"
    )
    return (
        f"database  {host}:{port}/{given.get('PGDATABASE', '(database named like the user)')} "
        f"as {given.get('PGUSER', '(your user)')}  ({password})"
    )


def describe(environ: Mapping[str, str]) -> list[str]:
    """What the notebooks will read, and how to point them elsewhere."""
    return [
        "The notebooks will read (parameters left at None):",
        f"  {cluster_line(environ)}",
        f"  {database_line(environ)}",
        "  service   health_url is not set in the notebooks: type it into the parameters cell "
        '(e.g. health_url = "https://api.example.com/health")',
        "Point them elsewhere: export KUBECONFIG=... or `kubectl config use-context NAME`; export "
        "PGHOST/PGPORT/PGDATABASE/PGUSER (the password in PGPASSWORD or ~/.pgpass, never in a "
        "notebook); or set kubeconfig, context and dsn in a notebook's parameters cell. "
        "`runbook demo --keep` brings up a demo cluster, database and service to try it on.",
    ]


def main(argv: list[str]) -> int:
    """`runbook lab [--dry-run] [--notebooks DIR] [JUPYTER ARGS...]`."""
    from .run import default_notebooks

    p = argparse.ArgumentParser(prog="runbook lab", description=__doc__.splitlines()[0])
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="say what the notebooks will read, then stop (do not start JupyterLab)",
    )
    p.add_argument("--notebooks", metavar="DIR", type=Path, default=None)
    args, jupyter_args = p.parse_known_args(argv)
    for line in describe(os.environ):
        print(line)
    if args.dry_run:
        return 0
    notebooks = args.notebooks or default_notebooks()
    lab = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter-lab"
    )
    if lab is None:
        raise RunbookError(
            "JupyterLab is not installed: `make lab` installs it (the `lab` extra: "
            "pip install -e '.[lab]')"
        )
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in jupyter_args:
        print(
            "note: JupyterLab refuses to run as root; run as a user, or add --allow-root "
            "(make lab LAB_ARGS=--allow-root)",
            flush=True,
        )
    sys.stdout.flush()
    os.execv(lab, [lab, str(notebooks), *jupyter_args])
    return 0  # pragma: no cover - execv does not return
