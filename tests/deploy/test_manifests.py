"""deploy/ and the Dockerfile, statically: what kustomize builds (real kubectl's kustomize) holds
the pod hardening, the probes and the command line `runbook serve` takes, the CronJob's limits,
Secrets by reference only, least-privilege roles; the Dockerfile (which cannot be built here: no
base image registry) runs non-root from pinned constraints with nothing secret in it."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from incidentlib.cli import serve as runbook_serve
from incidentlib.cli.serve import NOTIFY_ENV

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = "/usr/bin/kubectl"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


@cache
def build(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    dep = one(docs, "Deployment", "incident-runbook")["spec"]["template"]["spec"]
    cron = one(docs, "CronJob", "incident-runbook-triage")
    return {"deployment": dep, "cronjob": cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]}


def serve_parser() -> argparse.ArgumentParser:
    """`runbook serve`'s command line as issue 17 specifies it (and issue 18's --state-dir, which
    s3:// outputs need)."""
    p = argparse.ArgumentParser(prog="runbook serve", exit_on_error=False)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--outputs", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--config")
    p.add_argument("--token-file")
    p.add_argument("-p", nargs=2, action="append")
    p.add_argument("-f")
    p.add_argument("--evidence-base-url")
    return p


@pytest.mark.parametrize("overlay", [".", "overlays/read-only", "overlays/mitigations"])
def test_pods_run_hardened_with_limits_and_writable_tmp_only(overlay: str) -> None:
    for where, spec in pod_specs(build(overlay)).items():
        assert spec["serviceAccountName"] == "incident-runbook", where
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        (c,) = spec["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) == {"cpu", "memory"}, (where, kind)
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        writable = [p for p, m in mounts.items() if not m.get("readOnly")]
        state = ["/var/lib/incident-runbook"] if where == "deployment" else []
        assert writable == ["/tmp", *state], (where, writable)
        for path in writable:
            volume = next(v for v in spec["volumes"] if v["name"] == mounts[path]["name"])
            assert "sizeLimit" in volume["emptyDir"], (where, path)
        env = {e["name"]: e for e in c["env"]}
        for name in ("HOME", "TMPDIR", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            assert env[name]["value"].startswith("/tmp"), (where, name)


def test_the_deployment_runs_runbook_serve_as_issue_17_specifies_with_its_probes() -> None:
    docs = build(".")
    spec = pod_specs(docs)["deployment"]
    (c,) = spec["containers"]
    args = serve_parser().parse_args(c["args"][1:])
    assert c["args"][0] == "serve" and "command" not in c  # the image's entrypoint is `runbook`
    assert args.port == 9095 and args.outputs == "$(RUNBOOK_OUTPUTS)"
    # the bucket holds the evidence; the journal and scratch files go to a writable volume
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert not mounts[args.state_dir].get("readOnly")
    assert runbook_serve.parser().parse_args(c["args"][1:]).state_dir == Path(args.state_dir)
    assert args.token_file.startswith("/etc/incident-runbook/alertmanager/")
    assert c["ports"] == [{"name": "http", "containerPort": 9095}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    svc = one(docs, "Service", "incident-runbook")["spec"]
    assert svc["ports"][0]["port"] == 9095 and svc["ports"][0]["targetPort"] == "http"
    labels = one(docs, "Deployment", "incident-runbook")["spec"]["template"]["metadata"]["labels"]
    assert svc["selector"].items() <= labels.items()
    config = one(docs, "ConfigMap", spec["volumes"][1]["configMap"]["name"])["data"]
    assert config["outputs"].startswith("s3://")  # the evidence outlives the pod
    assert yaml.safe_load(config["params.yaml"]) == {"namespace": "production"}


def test_the_notifications_component_adds_the_webhook_and_link_by_reference(tmp_path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY / "overlays" / "read-only", tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "notifications", tmp_path)],
            }
        )
    )
    out = subprocess.run(
        [KUBECTL, "kustomize", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    docs = tuple(d for d in yaml.safe_load_all(out) if d)
    (c,) = pod_specs(docs)["deployment"]["containers"]
    args = serve_parser().parse_args(c["args"][1:])
    assert args.evidence_base_url == "$(EVIDENCE_BASE_URL)"
    # the webhook's URL is a credential: from the Secret into the environment, never on the
    # command line (every process on the node reads that)
    real = runbook_serve.parser().parse_args(c["args"][1:])
    assert args.p is None and real.parameter == [] and real.notify_webhook is None
    assert not any("WEBHOOK" in a for a in c["args"])
    env = {e["name"]: e for e in c["env"]}
    ref = env[NOTIFY_ENV]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "incident-runbook-notify", "key": "webhook"}


def test_the_cronjob_runs_triage_never_twice_never_late_never_long() -> None:
    cron = one(build("."), "CronJob", "incident-runbook-triage")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert 0 < cron["startingDeadlineSeconds"] <= 900
    assert cron["successfulJobsHistoryLimit"] > 0 and cron["failedJobsHistoryLimit"] > 0
    job = cron["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 900 and job["backoffLimit"] == 0
    (c,) = job["template"]["spec"]["containers"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    line = shlex.split(c["args"][0])
    assert line[:4] == ["exec", "runbook", "run", "triage"]
    assert "--outputs" in line and "-f" in line and "--incident" in line


def test_secrets_only_by_reference_and_none_shipped() -> None:
    for overlay in (".", "overlays/mitigations"):
        docs = build(overlay)
        assert [d for d in docs if d["kind"] == "Secret"] == []
        for where, spec in pod_specs(docs).items():
            (c,) = spec["containers"]
            for e in c["env"]:
                if "value" in e:  # a literal: never a credential
                    assert not re.search(r"(?i)password|token|secret|key|dsn", e["name"]), e
                    assert "://" not in e["value"] and "@" not in e["value"], e
            refs = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            refs |= {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
            assert {"incident-runbook-signing", "incident-runbook-db"} <= refs, where
            text = yaml.safe_dump(c)
            assert "postgresql://" not in text and "hooks.slack.com" not in text


def _rules(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (verb, group, res)
        for rule in doc["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    ]


def test_roles_are_least_privilege_and_mitigations_bound_per_namespace_only() -> None:
    read_only = build(".")
    read = _rules(one(read_only, "ClusterRole", "incident-runbook-read"))
    assert not {v for v, _, _ in read} & WRITE_VERBS and "watch" not in {v for v, _, _ in read}
    assert not [r for r in read if r[2] in ("secrets", "*") or "*" in r]
    roles = [(d["kind"], d["metadata"]["name"]) for d in read_only if d["kind"].endswith("Role")]
    assert roles == [("ClusterRole", "incident-runbook-read")]
    assert [d for d in read_only if d["kind"] == "RoleBinding"] == []  # read-only binds no write
    mitigations = build("overlays/mitigations")
    mitigate = one(mitigations, "ClusterRole", "incident-runbook-mitigate")
    assert {v for v, _, _ in _rules(mitigate)} == {"patch"}
    assert [r for r in mitigate["rules"] if r["resources"] == ["configmaps"]][0][
        "resourceNames"
    ] == ["app-config"]
    bound = [
        d
        for d in mitigations
        if d["kind"].endswith("Binding") and d["roleRef"]["name"] == "incident-runbook-mitigate"
    ]
    assert [(d["kind"], d["metadata"]["namespace"]) for d in bound] == [
        ("RoleBinding", "production")
    ]
    subjects = {(s["kind"], s["namespace"], s["name"]) for d in bound for s in d["subjects"]}
    assert subjects == {("ServiceAccount", "incident-runbook", "incident-runbook")}


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_slim_pinned_non_root_nothing_secret_read_only_root_friendly() -> None:
    steps = _instructions()
    kinds = [k for k, _ in steps]
    assert kinds[0] == "FROM" and re.fullmatch(r"python:3\.1[1-3]-slim(-\w+)?", steps[0][1])
    runs = " ".join(rest for k, rest in steps if k == "RUN")
    assert re.search(r"pip install -c constraints\.txt '\.\[s3\]'", runs)
    copies = [rest.split()[0] for k, rest in steps if k == "COPY"]
    assert "constraints.txt" in " ".join(rest for k, rest in steps if k == "COPY")
    assert not [c for c in copies if re.search(r"(?i)key|secret|\.env|outputs|kubeconfig", c)]
    users = [rest for k, rest in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    uid = int(users[-1].split(":")[0])
    for spec in pod_specs(build(".")).values():
        assert spec["securityContext"]["runAsUser"] == uid  # runAsNonRoot needs a numeric USER
    env_and_args = " ".join(rest for k, rest in steps if k in ("ENV", "ARG"))
    assert not re.search(r"(?i)(password|secret|token|access_key|signing_key)\w*=", env_and_args)
    for name in ("HOME", "TMPDIR", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        assert re.search(rf"\b{name}=/tmp\b", env_and_args), name
    assert re.search(r"\bRUNBOOK_NOTEBOOKS=/opt/incident-runbook/notebooks\b", env_and_args)
    assert "COPY notebooks/ notebooks/" in [f"{k} {rest}" for k, rest in steps]
    assert ("ENTRYPOINT", '["runbook"]') in steps and ("EXPOSE", "9095") in steps
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!incidentlib/" in ignore  # only what is copied is sent
    assert not [line for line in ignore if re.search(r"(?i)!.*(key|\.env|outputs)", line)]
