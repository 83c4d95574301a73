"""Every Kubernetes mitigation plan on its exact words, request and diff, and every refusal: fewer
replicas for a scale-out, more for a scale-down, a bad ConfigMap key, a limit already set, an OOM
without a memory limit (pure; `make mutate` runs these against every mutant of kube/actions.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.kube import actions as ka
from incidentlib.plan import REPLACES_PODS, REVERSIBLE, ApiRequest

from .api_payloads import DEPLOYMENT, REPLICASETS

PATH = "/apis/apps/v1/namespaces/production/deployments/backend"
CONFIGMAP = {
    "metadata": {"name": "backend-config", "namespace": "production"},
    "data": {"CACHE_ENABLED": "false", "OTHER": "x"},
}


def _dep(replicas: int | None = 3, **spec) -> dict:
    d = copy.deepcopy(DEPLOYMENT)
    if replicas is None:
        del d["spec"]["replicas"]
    else:
        d["spec"]["replicas"] = replicas
    d["spec"].update(spec)
    return d


# -- scale -----------------------------------------------------------------------------------------


def test_scale_is_a_merge_patch_of_the_scale_subresource_with_its_diff():
    plan = ka.plan_scale(DEPLOYMENT, 5, why="3 pods cannot keep up")
    assert (plan.action, plan.target, plan.summary, plan.command, plan.why, plan.safety) == (
        "scale",
        "deployment/backend in production",
        "scale deployment/backend from 3 to 5 replicas",
        "kubectl scale deployment/backend -n production --replicas=5",
        "3 pods cannot keep up",
        REVERSIBLE,
    )
    assert plan.requests == [
        ApiRequest("PATCH", PATH + "/scale", {"spec": {"replicas": 5}}, ka.MERGE)
    ]
    assert plan.rollout == PATH and plan.skipped is None
    assert plan.change == "\n".join(
        [
            "--- deployment/backend (now)",
            "+++ deployment/backend (after)",
            "@@ -4,5 +4,5 @@",
            "     kubernetes.io/change-cause: deploy backend 2.4.0",
            " spec:",
            "-  replicas: 3",
            "+  replicas: 5",
            "   selector:",
            "     matchLabels:",
        ]
    )
    assert DEPLOYMENT["spec"]["replicas"] == 3  # the object read is never changed


def test_scale_to_the_same_count_is_skipped_and_a_missing_count_is_one():
    plan = ka.plan_scale(DEPLOYMENT, 3)
    assert (plan.skipped, plan.requests, plan.change) == (
        "deployment/backend already has 3 replicas",
        [],
        "",
    )
    one = ka.plan_scale(_dep(None), 1)
    assert one.skipped == "deployment/backend already has 1 replicas"
    assert ka.plan_scale(_dep(None), 2).summary == "scale deployment/backend from 1 to 2 replicas"


def test_scale_out_refuses_fewer_replicas_and_allows_the_same_or_more():
    with pytest.raises(InvalidParameter) as e:
        ka.plan_scale_out(DEPLOYMENT, 2)
    assert str(e.value) == (
        "scale out to 2 replicas is fewer than the current 3; give a larger `replicas` or use "
        "scale_down"
    )
    same = ka.plan_scale_out(DEPLOYMENT, 3, why="w")
    assert (same.action, same.skipped, same.why) == (
        "scale_out",
        "deployment/backend already has 3 replicas",
        "w",
    )
    assert ka.plan_scale_out(DEPLOYMENT, 4).requests[0].body == {"spec": {"replicas": 4}}
    assert ka.plan_scale_out(_dep(None), 2).summary.endswith("from 1 to 2 replicas")
    with pytest.raises(InvalidParameter, match="fewer than the current 1"):
        ka.plan_scale_out(_dep(None), 0)


def test_scale_down_refuses_more_replicas_and_halves_by_default():
    with pytest.raises(InvalidParameter) as e:
        ka.plan_scale_down(DEPLOYMENT, 4)
    assert str(e.value) == "scale down to 4 replicas is more than the current 3"
    half = ka.plan_scale_down(_dep(6), why="shed load")
    assert (half.action, half.summary, half.why) == (
        "scale_down",
        "scale deployment/backend from 6 to 3 replicas",
        "shed load",
    )
    assert ka.plan_scale_down(_dep(3)).summary.endswith("from 3 to 1 replicas")  # 3 // 2
    assert ka.plan_scale_down(_dep(1)).skipped == "deployment/backend already has 1 replicas"
    assert ka.plan_scale_down(_dep(None)).skipped == "deployment/backend already has 1 replicas"
    assert ka.plan_scale_down(_dep(3), 3).skipped == "deployment/backend already has 3 replicas"
    assert ka.plan_scale_down(_dep(5), 2).requests[0].body == {"spec": {"replicas": 2}}
    with pytest.raises(
        InvalidParameter, match="scale down to 2 replicas is more than the current 1"
    ):
        ka.plan_scale_down(_dep(None), 2)


# -- restart ---------------------------------------------------------------------------------------


def test_restart_stamps_restarted_at_in_utc_to_the_second():
    eastern = timezone(timedelta(hours=-5))
    plan = ka.plan_restart(DEPLOYMENT, now=datetime(2026, 11, 27, 4, 40, 7, 999, tzinfo=eastern))
    assert plan.requests == [
        ApiRequest(
            "PATCH",
            PATH,
            {
                "spec": {
                    "template": {
                        "metadata": {"annotations": {ka.RESTARTED_AT: "2026-11-27T09:40:07Z"}}
                    }
                }
            },
            ka.STRATEGIC,
            {"fieldManager": "kubectl-rollout"},
        )
    ]
    assert (plan.action, plan.safety, plan.rollout) == ("restart", REPLACES_PODS, PATH)
    assert plan.summary == (
        "restart every pod of deployment/backend (3 replica(s), 0 ready): a new rollout of the "
        "same template"
    )
    assert plan.change.splitlines()[2:8] == [
        "@@ -10,4 +10,6 @@",
        "   template:",
        "     metadata:",
        "+      annotations:",
        "+        kubectl.kubernetes.io/restartedAt: '2026-11-27T09:40:07Z'",
        "       creationTimestamp: null",
    ]


def test_restart_keeps_the_templates_other_annotations_and_defaults_to_now():
    dep = copy.deepcopy(DEPLOYMENT)
    dep["spec"]["template"]["metadata"]["annotations"] = {"team": "payments"}
    before = datetime.now(UTC).replace(microsecond=0)
    plan = ka.plan_restart(dep, why="stuck")
    stamp = plan.requests[0].body["spec"]["template"]["metadata"]["annotations"][ka.RESTARTED_AT]
    assert before <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert "\n         team: payments" in plan.change and plan.why == "stuck"  # kept, as context
    bare = {"metadata": {"namespace": "ns", "name": "w"}}
    plan = ka.plan_restart(bare, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert plan.summary.startswith("restart every pod of deployment/w (1 replica(s), 0 ready)")
    assert plan.command == "kubectl rollout restart deployment/w -n ns"


# -- memory limit ----------------------------------------------------------------------------------


def test_memory_limit_patch_summary_command_and_diff():
    plan = ka.plan_memory_limit(DEPLOYMENT, "1Gi", why="OOMKilled")
    assert plan.requests == [
        ApiRequest(
            "PATCH",
            PATH,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "backend", "resources": {"limits": {"memory": "1Gi"}}}
                            ]
                        }
                    }
                }
            },
            ka.STRATEGIC,
        )
    ]
    assert plan.summary == (
        "raise the memory limit of container backend in deployment/backend from 512Mi to 1Gi"
    )
    assert plan.command == (
        "kubectl set resources deployment/backend -n production -c backend --limits=memory=1Gi"
    )
    assert (plan.action, plan.safety, plan.rollout, plan.why) == (
        "memory",
        REPLACES_PODS,
        PATH,
        "OOMKilled",
    )
    assert "-            memory: 512Mi\n+            memory: 1Gi" in plan.change
    assert "\n             cpu: '1'\n" in plan.change  # the other limit is kept, as context


def test_memory_limit_already_set_is_skipped():
    plan = ka.plan_memory_limit(DEPLOYMENT, "512Mi")
    assert (plan.skipped, plan.requests, plan.change) == (
        "container backend already has a memory limit of 512Mi",
        [],
        "",
    )


def test_memory_limit_without_a_limit_names_none_and_a_high_request_follows_down():
    dep = copy.deepcopy(DEPLOYMENT)
    del dep["spec"]["template"]["spec"]["containers"][0]["resources"]
    plan = ka.plan_memory_limit(dep, "1Gi")
    assert plan.summary.endswith("from none to 1Gi")
    assert "+          limits:\n+            memory: 1Gi" in plan.change
    low = ka.plan_memory_limit(DEPLOYMENT, "128Mi")  # the request (256Mi) is above: it follows
    container = low.requests[0].body["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "limits": {"memory": "128Mi"},
        "requests": {"memory": "128Mi"},
    }
    assert "-            memory: 256Mi\n+            memory: 128Mi" in low.change
    same = ka.plan_memory_limit(DEPLOYMENT, "256Mi")  # a request equal to the limit stays
    resources = same.requests[0].body["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"memory": "256Mi"}}


def test_memory_limit_picks_the_named_container_and_refuses_unknown_or_none():
    dep = copy.deepcopy(DEPLOYMENT)
    side = {"name": "proxy", "image": "envoy", "resources": {"limits": {"memory": "64Mi"}}}
    dep["spec"]["template"]["spec"]["containers"].append(side)
    plan = ka.plan_memory_limit(dep, "128Mi", container="proxy")
    assert plan.summary == (
        "raise the memory limit of container proxy in deployment/backend from 64Mi to 128Mi"
    )
    assert plan.requests[0].body["spec"]["template"]["spec"]["containers"][0]["name"] == "proxy"
    assert ka.plan_memory_limit(dep, "1Gi").summary.startswith(
        "raise the memory limit of container backend"
    )
    with pytest.raises(InvalidParameter) as e:
        ka.plan_memory_limit(dep, "1Gi", container="nope")
    assert str(e.value) == (
        "container 'nope' is not in deployment/backend; containers: backend, proxy"
    )
    no_spec = copy.deepcopy(DEPLOYMENT)
    del no_spec["spec"]["template"]["spec"]
    with pytest.raises(InvalidParameter, match="deployment/backend has no containers to change"):
        ka.plan_memory_limit(no_spec, "1Gi")
    empty = copy.deepcopy(DEPLOYMENT)
    empty["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(InvalidParameter) as e:
        ka.plan_memory_limit(empty, "1Gi")
    assert str(e.value) == "deployment/backend has no containers to change"
    with pytest.raises(InvalidParameter, match="memory_limit 'lots'"):
        ka.plan_memory_limit(DEPLOYMENT, "lots")


# -- a ConfigMap key -------------------------------------------------------------------------------


def test_configmap_key_is_a_merge_patch_with_its_diff():
    plan = ka.plan_configmap_key(CONFIGMAP, "CACHE_ENABLED", "true", why="cache off")
    assert (plan.action, plan.target, plan.safety, plan.rollout, plan.why) == (
        "cache",
        "configmap/backend-config in production",
        REVERSIBLE,
        None,
        "cache off",
    )
    assert (
        plan.summary
        == "set CACHE_ENABLED=true in configmap/backend-config (now CACHE_ENABLED=false)"
    )
    assert plan.command == (
        "kubectl -n production patch configmap/backend-config --type merge -p "
        '\'{"data": {"CACHE_ENABLED": "true"}}\''
    )
    assert plan.requests == [
        ApiRequest(
            "PATCH",
            "/api/v1/namespaces/production/configmaps/backend-config",
            {"data": {"CACHE_ENABLED": "true"}},
            ka.MERGE,
        )
    ]
    assert plan.change == "\n".join(
        [
            "--- configmap/backend-config (now)",
            "+++ configmap/backend-config (after)",
            "@@ -1,4 +1,4 @@",
            " data:",
            "-  CACHE_ENABLED: 'false'",
            "+  CACHE_ENABLED: 'true'",
            "   OTHER: x",
            " metadata:",
        ]
    )
    assert CONFIGMAP["data"]["CACHE_ENABLED"] == "false"


def test_configmap_key_already_set_unset_and_custom_action():
    same = ka.plan_configmap_key(CONFIGMAP, "CACHE_ENABLED", "false")
    assert (same.skipped, same.requests) == ("CACHE_ENABLED is already false", [])
    new = ka.plan_configmap_key({"metadata": CONFIGMAP["metadata"]}, "TTL", 30, action="ttl")
    assert new.summary == "set TTL=30 in configmap/backend-config (now TTL=<unset>)"
    assert new.action == "ttl" and new.requests[0].body == {"data": {"TTL": "30"}}
    # a value equal as text is already set
    assert ka.plan_configmap_key({**CONFIGMAP, "data": {"TTL": "30"}}, "TTL", 30).skipped


@pytest.mark.parametrize("key", ["", "cache enabled", "a/b", "key=1", "ключ!", "x\n"])
def test_a_configmap_key_of_other_characters_is_refused(key):
    with pytest.raises(InvalidParameter) as e:
        ka.plan_configmap_key(CONFIGMAP, key, "true")
    assert str(e.value) == f"ConfigMap key {key!r} may hold only letters, digits, '-', '_' and '.'"


@pytest.mark.parametrize("key", ["CACHE_ENABLED", "cache.ttl-s", "a", "A1_b-2.c"])
def test_a_configmap_key_of_letters_digits_and_dashes_is_taken(key):
    assert ka.plan_configmap_key(CONFIGMAP, key, "on").requests[0].body == {"data": {key: "on"}}


# -- undo ------------------------------------------------------------------------------------------


def test_undo_summary_diff_and_refusals():
    plan = ka.plan_undo(DEPLOYMENT, REPLICASETS, why="revision 3 fails")
    assert plan.summary == (
        "roll deployment/backend back from revision 3 to revision 2 (image "
        "registry.example.com/backend:2.3.1)"
    )
    assert (plan.action, plan.safety, plan.why) == ("undo", REPLACES_PODS, "revision 3 fails")
    assert "-    kubernetes.io/change-cause: deploy backend 2.4.0" in plan.change
    assert "+    kubernetes.io/change-cause: deploy backend 2.3.1" in plan.change
    for bad in (-1, True, "2", 1.0):
        with pytest.raises(InvalidParameter) as e:
            ka.plan_undo(DEPLOYMENT, REPLICASETS, to_revision=bad)
        assert str(e.value) == (
            f"invalid to_revision {bad!r}: expected a revision number from the rollout history"
        )
    zero = ka.plan_undo(DEPLOYMENT, REPLICASETS, to_revision=0)  # 0: the previous one, as kubectl
    assert zero.command == "kubectl rollout undo deployment/backend -n production"
    with pytest.raises(InvalidParameter) as e:
        ka.plan_undo(DEPLOYMENT, REPLICASETS[:1])
    assert str(e.value).startswith("no rollout history to undo for deployment/backend: revisions ")
    with pytest.raises(InvalidParameter) as e:
        ka.plan_undo(DEPLOYMENT, [])
    assert str(e.value) == "no rollout history to undo for deployment/backend: revisions (none)"
    paused = _dep(3, paused=True)
    with pytest.raises(InvalidParameter) as e:
        ka.plan_undo(paused, REPLICASETS)
    assert str(e.value) == (
        "deployment/backend is paused; resume it first with "
        "`kubectl rollout resume deployment/backend -n production`"
    )


def test_undo_keeps_the_annotations_kubectl_never_copies():
    dep = copy.deepcopy(DEPLOYMENT)
    dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    dep["metadata"]["annotations"]["team"] = "payments"  # not kept: the old one's set replaces it
    body = ka.plan_undo(dep, REPLICASETS).requests[0].body
    assert body[1] == {
        "op": "replace",
        "path": "/metadata/annotations",
        "value": {
            "deployment.kubernetes.io/revision": "3",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "kubernetes.io/change-cause": "deploy backend 2.3.1",
        },
    }


# -- choosing --------------------------------------------------------------------------------------


def _choose(mitigation="auto", *, correlation=None, oom=False, replicas=None, limit=None):
    return ka.choose_mitigation(
        mitigation,
        correlation=correlation,
        oom_killed=oom,
        replicas=replicas,
        memory_limit=limit,
    )


def test_choose_mitigation_names_its_reason_for_each_finding():
    corr = {"revision": 3, "previous": 2}
    assert _choose(correlation=corr, oom=True, replicas=5, limit="1Gi") == (
        "undo",
        "revision 3 fails and revision 2 ran before it",
    )
    assert _choose(correlation={"revision": 1, "previous": None}, oom=True, limit="1Gi") == (
        "memory",
        "containers were OOMKilled; memory_limit=1Gi was given",
    )
    assert _choose(oom=True, replicas=5) == (
        "none",
        "containers were OOMKilled: pass memory_limit (e.g. '1Gi') to raise the limit",
    )
    assert _choose(replicas=5, limit="1Gi") == ("scale", "replicas=5 was given")
    assert _choose(replicas=0) == ("scale", "replicas=0 was given")
    assert _choose(limit="1Gi") == ("none", "no mitigation is suggested by the findings")
    assert _choose(correlation={}) == ("none", "no mitigation is suggested by the findings")


@pytest.mark.parametrize("mitigation", ["undo", "scale", "restart", "memory", "none"])
def test_an_explicit_mitigation_is_taken_as_asked(mitigation):
    assert _choose(mitigation, correlation={"revision": 3, "previous": 2}) == (
        mitigation,
        "asked for by the mitigation parameter",
    )


def test_an_unknown_mitigation_is_refused_with_the_valid_ones():
    with pytest.raises(InvalidParameter) as e:
        _choose("rollback")
    assert str(e.value) == (
        "invalid mitigation 'rollback': one of auto, undo, scale, restart, memory, none"
    )


def test_performance_mitigations_parse_and_refuse():
    assert ka.performance_mitigations(" scale_out, cache ,,") == {"scale_out", "cache"}
    assert ka.performance_mitigations(None) == set() == ka.performance_mitigations("")
    with pytest.raises(InvalidParameter) as e:
        ka.performance_mitigations("reboot,scale_out,nuke")
    assert str(e.value) == (
        "unknown mitigation(s) nuke, reboot; valid: scale_out, restart, cache, scale_down, memory"
    )


# -- rollout status --------------------------------------------------------------------------------


def _rolling(**status) -> dict:
    return {
        "metadata": {"name": "b", "generation": 4},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 4, **status},
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"observedGeneration": 3},
            (False, "Waiting for deployment spec update to be observed..."),
        ),
        (
            {"updatedReplicas": 2, "replicas": 3, "availableReplicas": 3},
            (
                False,
                'Waiting for deployment "b" rollout to finish: 2 out of 3 new replicas have been '
                "updated...",
            ),
        ),
        (
            {"updatedReplicas": 3, "replicas": 5, "availableReplicas": 3},
            (
                False,
                'Waiting for deployment "b" rollout to finish: 2 old replicas are pending '
                "termination...",
            ),
        ),
        (
            {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 2},
            (
                False,
                'Waiting for deployment "b" rollout to finish: 2 of 3 updated replicas are '
                "available...",
            ),
        ),
        (
            {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3},
            (True, 'deployment "b" successfully rolled out'),
        ),
        (
            {
                "updatedReplicas": 3,
                "replicas": 3,
                "availableReplicas": 3,
                "conditions": [
                    {"type": "Available", "reason": "ProgressDeadlineExceeded"},
                    {"type": "Progressing", "reason": "ProgressDeadlineExceeded"},
                ],
            },
            (False, 'deployment "b" exceeded its progress deadline'),
        ),
        (
            {
                "updatedReplicas": 3,
                "replicas": 3,
                "availableReplicas": 3,
                "conditions": [{"type": "Progressing", "reason": "NewReplicaSetAvailable"}],
            },
            (True, 'deployment "b" successfully rolled out'),
        ),
    ],
)
def test_rollout_done_like_kubectl_rollout_status(status, expected):
    dep = _rolling()
    dep["status"] = {"observedGeneration": 4, **status}
    assert ka.rollout_done(dep) == expected


def test_only_a_progressing_condition_past_its_deadline_counts():
    dep = _rolling()
    dep["status"].update(updatedReplicas=3, replicas=3, availableReplicas=3)
    dep["status"]["conditions"] = [{"type": "Available", "reason": "ProgressDeadlineExceeded"}]
    assert ka.rollout_done(dep) == (True, 'deployment "b" successfully rolled out')
    # a generation the status has not observed yet (no observedGeneration at all)
    assert ka.rollout_done({"metadata": {"name": "b", "generation": 1}, "status": {}}) == (
        False,
        "Waiting for deployment spec update to be observed...",
    )
    assert ka.rollout_done({"spec": {"replicas": 0}}) == (
        True,
        'deployment "" successfully rolled out',
    )


def test_rollout_done_reads_missing_fields_as_kubectl_does():
    # no generation, no status: observed; one replica wanted, none updated
    assert ka.rollout_done({"metadata": {"name": "x"}}) == (
        False,
        'Waiting for deployment "x" rollout to finish: 0 out of 1 new replicas have been '
        "updated...",
    )
    scaled_to_zero = {"metadata": {"name": "z"}, "spec": {"replicas": 0}, "status": {}}
    assert ka.rollout_done(scaled_to_zero) == (True, 'deployment "z" successfully rolled out')


def test_no_why_given_is_an_empty_why_and_a_nameless_object_is_named_empty():
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    plans = [
        ka.plan_undo(DEPLOYMENT, REPLICASETS),
        ka.plan_scale(DEPLOYMENT, 5),
        ka.plan_scale_out(DEPLOYMENT, 5),
        ka.plan_scale_down(DEPLOYMENT),
        ka.plan_restart(DEPLOYMENT, now=stamp),
        ka.plan_memory_limit(DEPLOYMENT, "1Gi"),
        ka.plan_configmap_key(CONFIGMAP, "CACHE_ENABLED", "true"),
    ]
    assert [p.why for p in plans] == [""] * 7
    bare = ka.plan_scale({"metadata": {}}, 2)
    assert (bare.target, bare.command) == (
        "deployment/ in ",
        "kubectl scale deployment/ -n  --replicas=2",
    )
    assert bare.requests[0].path == "/apis/apps/v1/namespaces//deployments//scale"
    assert "+  replicas: 2" in bare.change  # an object without a spec gets one
    assert ka.plan_memory_limit(DEPLOYMENT, "1Gi").target == "deployment/backend in production"


def test_object_diff_shows_annotations_and_keys_in_order():
    before = {
        "metadata": {"name": "d", "annotations": {"b": "1", "a": "x"}},
        "spec": {"z": 1, "y": 2},
    }
    after = {
        "metadata": {"name": "d", "annotations": {"b": "2", "a": "x"}},
        "spec": {"z": 1, "y": 2},
    }
    assert ka.object_diff(before, after).splitlines() == [
        "--- deployment/d (now)",
        "+++ deployment/d (after)",
        "@@ -2,5 +2,5 @@",
        "   annotations:",
        "     a: x",
        "-    b: '1'",
        "+    b: '2'",
        " spec:",
        "   y: 2",
    ]


def test_undo_with_exactly_two_revisions_and_the_old_template_untouched():
    dep = copy.deepcopy(DEPLOYMENT)
    two = [
        rs
        for rs in REPLICASETS
        if rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") in ("2", "3")
    ]
    plan = ka.plan_undo(dep, two)
    assert plan.summary.startswith("roll deployment/backend back from revision 3 to revision 2")
    # the hash label is dropped from the patch, not from the ReplicaSet that was read
    assert all("pod-template-hash" in rs["spec"]["template"]["metadata"]["labels"] for rs in two)
    # a ReplicaSet template without the hash label is taken as it is
    unlabelled = copy.deepcopy(two)
    for rs in unlabelled:
        del rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    assert ka.plan_undo(dep, unlabelled).requests[0].body[0]["value"]["metadata"]["labels"] == {
        "app": "backend"
    }


def test_workload_paths_and_one_record_shape():
    assert ka.workload_path("ns", "db", "StatefulSet") == (
        "/apis/apps/v1/namespaces/ns/statefulsets/db"
    )
    assert ka.workload_path("ns", "w") == "/apis/apps/v1/namespaces/ns/deployments/w"
    sts = {"kind": "StatefulSet", "metadata": {"namespace": "ns", "name": "db"}, "spec": {}}
    assert ka.plan_restart(sts, now=datetime(2026, 1, 1, tzinfo=UTC)).target == (
        "statefulset/db in ns"
    )


def _sts(generation=2, replicas=3, strategy=None, **status):
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": generation},
        "spec": {} if replicas is None else {"replicas": replicas},  # none given: one is wanted
        "status": {"observedGeneration": 2, **status},
    }
    if strategy is not None:
        sts["spec"]["updateStrategy"] = strategy
    return sts


DONE = {"readyReplicas": 3, "updatedReplicas": 3, "currentReplicas": 3}
REV = {"currentRevision": "db-7", "updateRevision": "db-7"}
PARTITION = "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated..."
ROLLING = "waiting for statefulset rolling update to complete 3 pods at revision db-7..."
COMPLETE = "statefulset rolling update complete {} pods at revision db-7..."


@pytest.mark.parametrize(
    ("sts", "expected"),
    [
        (
            _sts(strategy={"type": "OnDelete"}),
            (True, "rollout status is only available for RollingUpdate (db)"),
        ),
        (
            _sts(generation=3, **DONE, **REV),
            (False, "Waiting for statefulset spec update to be observed..."),
        ),
        (_sts(readyReplicas=1), (False, "Waiting for 2 pods to be ready...")),
        (_sts(replicas=None), (False, "Waiting for 1 pods to be ready...")),
        (
            _sts(strategy={"rollingUpdate": {"partition": 2}}, readyReplicas=3, updatedReplicas=0),
            (False, PARTITION),
        ),
        (
            _sts(
                strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                readyReplicas=3,
                updatedReplicas=2,
            ),
            (True, "partitioned roll out complete: 2 new pods have been updated..."),
        ),
        (_sts(**DONE, currentRevision="db-6", updateRevision="db-7"), (False, ROLLING)),
        (_sts(**DONE, **REV), (True, COMPLETE.format(3))),
        (_sts(readyReplicas=3, **REV), (True, COMPLETE.format(3))),
        (_sts(readyReplicas=3, currentReplicas=2, **REV), (True, COMPLETE.format(2))),
    ],
)
def test_a_statefulset_rollout_like_kubectl_rollout_status(sts, expected):
    assert ka.rollout_done(sts) == expected
    assert ka.statefulset_rollout_done({}) == (False, "Waiting for 1 pods to be ready...")
