"""The outage runbook's Recovery Verification and its fallbacks, in one executed notebook: after
the applied rollback the health endpoint is probed again (and answers, because the service it
stands for is now on the good image); an identity with namespaced roles only reads the
namespace's events instead of every namespace's; a frontend deployment that does not exist is
said, not silently skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from incidentlib.kube import client as kube

from .nbrun import execute, health_server, text_of

pytestmark = [pytest.mark.sim, pytest.mark.notebook]

GOOD_IMAGE = "registry.example.com/backend:2.3.1"


def service_of(kubeconfig: str, given: list[int]) -> Callable[[], int]:
    """What a health endpoint standing for the backend answers: 200 while the deployment runs the
    good image, 503 while it runs the bad one (each answer kept in `given`)."""
    cluster = kube.connect(kubeconfig=kubeconfig)

    def answer() -> int:
        dep = cluster.get_json("/apis/apps/v1/namespaces/production/deployments/backend")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        given.append(200 if image == GOOD_IMAGE else 503)
        return given[-1]

    return answer


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from incidentlib.sim.testing import running_sim

    tmp = tmp_path_factory.mktemp("outage-recovery")
    # namespaced roles only: nothing may be listed across all namespaces
    with running_sim("bad-rollout", workdir=tmp / "sim", forbidden_namespaces={"payments"}) as sim:
        given: list[int] = []
        with health_server(service_of(str(sim.kubeconfig), given)) as url:
            scraps, nb = execute(
                tmp / "out.ipynb",
                kubeconfig=str(sim.kubeconfig),
                health_url=url,
                frontend_deployment="web",
                apply=True,
                rollout_timeout_s=30,
            )
            return {"scraps": scraps, "text": text_of(nb), "given": list(given)}


def test_the_service_answers_again_after_the_rollback(applied: dict[str, Any]) -> None:
    scraps, text = applied["scraps"], applied["text"]
    action = scraps["actions"][0]
    assert (action["action"], action["applied"], action["status"]) == ("undo", True, "rolled out")
    # the first probes met the bad image, the three after the mitigation the good one
    assert 503 in applied["given"][:-3] and applied["given"][-3:] == [200, 200, 200]
    assert scraps["figures"]["recovered"] is True
    assert "answers again (3 of 3 requests OK)" in text
    assert "health check after the mitigation" in text


def test_namespaced_roles_read_the_namespace_events(applied: dict[str, Any]) -> None:
    sources = {s["source"]: s for s in applied["scraps"]["sources"]}
    wide = sources["kubernetes: events (all namespaces)"]
    assert wide["status"] == "failed" and "403 Forbidden" in wide["error"]
    assert sources["kubernetes: events in production"]["status"] == "ok"
    events = applied["scraps"]["events"]
    assert len(events) > 0 and set(events["namespace"]) == {"production"}
    assert "BackOff" in set(events["reason"])


def test_a_frontend_that_does_not_exist_is_said(applied: dict[str, Any]) -> None:
    assert (
        "no pod of deployment/web in production: its logs were not read (does it exist? set "
        "frontend_deployment to the name of your frontend, or None)" in applied["text"]
    )
