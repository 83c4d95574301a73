"""`runbook lab` says which cluster, database and service the notebooks will read before JupyterLab
starts: read from the kubeconfig and the environment, nothing contacted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from incidentlib.cli.lab import cluster_line, database_line, describe

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: prod-eu
  cluster: {server: "https://10.0.0.1:6443"}
- name: staging
  cluster: {server: "https://10.0.9.9:6443"}
contexts:
- name: prod
  context: {cluster: prod-eu, user: sre}
- name: stage
  context: {cluster: staging, user: sre}
current-context: prod
users:
- name: sre
  user: {token: "t0ps3cret"}
"""


def test_the_current_context_and_its_server(tmp_path: Path) -> None:
    kc = tmp_path / "config"
    kc.write_text(KUBECONFIG)
    line = cluster_line({"KUBECONFIG": str(kc)})
    assert line == f"cluster   context 'prod' -> https://10.0.0.1:6443  (from {kc})"
    assert "t0ps3cret" not in line


def test_a_multi_path_kubeconfig_merges_like_kubectl(tmp_path: Path) -> None:
    # the first file that sets current-context wins; contexts and clusters come from every file
    (tmp_path / "a").write_text("apiVersion: v1\nkind: Config\ncurrent-context: stage\n")
    (tmp_path / "b").write_text(KUBECONFIG)
    paths = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "missing"), str(tmp_path / "b")])
    assert cluster_line({"KUBECONFIG": paths}) == (
        f"cluster   context 'stage' -> https://10.0.9.9:6443  (from {tmp_path / 'a'}, "
        f"{tmp_path / 'b'})"
    )


def test_no_kubeconfig_and_a_dangling_context(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert cluster_line({"KUBECONFIG": str(missing)}) == (
        f"cluster   none: no kubeconfig at {missing}; set KUBECONFIG or the notebooks' kubeconfig "
        "parameter"
    )
    kc = tmp_path / "config"
    kc.write_text(KUBECONFIG.replace("current-context: prod", "current-context: gone"))
    assert cluster_line({"KUBECONFIG": str(kc)}) == (
        f"cluster   {kc} has no current context ('gone'): `kubectl config use-context NAME` or "
        "the notebooks' context parameter"
    )


def test_the_database_from_libpq_variables_without_the_password() -> None:
    env = {
        "PGHOST": "db.internal",
        "PGPORT": "6432",
        "PGDATABASE": "app",
        "PGUSER": "sre",
        "PGPASSWORD": "hunter2-secret",
    }
    line = database_line(env)
    assert line == "database  db.internal:6432/app as sre  (password from PGPASSWORD)"
    assert database_line({"PGSERVICE": "prod"}) == (
        "database  service 'prod' (PGSERVICE; pg_service.conf)"
    )
    assert database_line({}).startswith("database  none set: no PG* variables")


def test_runbook_lab_dry_run_prints_it_and_starts_nothing(tmp_path: Path) -> None:
    kc = tmp_path / "config"
    kc.write_text(KUBECONFIG)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kc),
        "PGHOST": "127.0.0.1",
        "PGPASSWORD": "pw-77",
    }
    out = subprocess.run(
        [sys.executable, "-m", "incidentlib.cli", "lab", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.splitlines() == describe(env)
    assert "context 'prod' -> https://10.0.0.1:6443" in out
    assert "database  127.0.0.1:5432/(database named like the user) as (your user)" in out
    assert "health_url is not set" in out and "pw-77" not in out
