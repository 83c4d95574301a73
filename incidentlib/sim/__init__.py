"""The simulated Kubernetes cluster: test and demo infrastructure speaking the real REST API.

    start(scenario, *, workdir, port=0, tls=False) -> SimHandle   serve a scenario on 127.0.0.1
    scenario_names() -> list[str]                                the scenarios that exist

Real `kubectl` and the official `kubernetes` client work against it unchanged through the kubeconfig
it writes (context `sim`). Scenarios live in `scenarios/*.yaml` (facts tests rely on are in each
file's header comment); `scale` is built in Python (`scale.py`). `runbook sim --scenario NAME`
serves one in the foreground; `incidentlib.sim.testing` has the `sim_cluster` pytest fixture.

Staging endpoints (outside the Kubernetes paths, not recorded in the request log):

    GET    /_sim/requests  the request log: [{"method", "path", "query", "content_type"}, ...]
    DELETE /_sim/requests  clear it
    POST   /_sim/advance   {"seconds": 600}: move the simulated clock; controllers and kubelet
                           catch up
    POST   /_sim/logs      {"namespace", "pod", "container", "lines": [...]}: append to a log
    POST   /_sim/metrics   {"namespace", "pod", "container", "cpu_m": 750,
                           "memory_bytes": 3.1e8}

What else it serves: `pods/exec` over the WebSocket stream protocol (v5.channel.k8s.io and
v4.channel.k8s.io; what a command prints is in `commands.py`), Services with Endpoints and
EndpointSlices kept by controllers (`endpoints.py`), SelfSubjectAccessReview /
SelfSubjectRulesReview answered from the rules it enforces (`authz.py`), and the protobuf bodies
of `kubectl create namespace|serviceaccount|configmap|secret|role|rolebinding|clusterrole|
clusterrolebinding` (`protobuf.py`; another kind sent as protobuf, e.g. `kubectl create
deployment`, is refused with 415 as a real server refuses a format it does not take: use
`kubectl apply -f`, which sends JSON).

Failures to stage: `start(..., forbidden_namespaces={"ns"})` answers 403 Forbidden for that
namespace and for lists across all namespaces (an identity with namespaced roles only);
`forbidden_resources={"pods/exec"}` forbids that resource everywhere; a scenario's `blocked:`
(`[{from: app, to: "host:port"}]`) makes connections from that app's pods time out;
`metrics=False` drops metrics.k8s.io (404, absent from discovery); an image tagged `:does-not-exist`
fails to pull (ErrImagePull/ImagePullBackOff); a pod status written through the `status` subresource
is kept (the kubelet leaves that pod alone).
"""

from __future__ import annotations

from .handle import SimHandle, start
from .scenario import names as scenario_names

__all__ = ["SimHandle", "start", "scenario_names"]
