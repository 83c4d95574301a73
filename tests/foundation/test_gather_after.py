"""Run.gather with reads that need another's answer (`After`): they start as soon as it is in,
while the other reads still run; a parent that fails, or a task with nothing to read, leaves no
record."""

from __future__ import annotations

import threading

import pytest

from incidentlib.notebook.run import NOT_READ, After, Run


def test_a_dependent_read_starts_while_an_independent_one_still_runs() -> None:
    started = threading.Event()

    def slow() -> str:
        # without the dependent read starting meanwhile, this would wait its whole 5 s and fail
        assert started.wait(5), (
            "the read that waits for `deployment` did not start before this one ended"
        )
        return "all pods"

    def history(deployment: dict[str, str]) -> list[str]:
        started.set()
        return [deployment["name"] + "-rs-1", deployment["name"] + "-rs-2"]

    run = Run("outage", quiet=True)
    g = run.gather(
        {
            "pods": slow,
            "deployment": lambda: {"name": "backend"},
            "replicasets": After("deployment", history),
        },
        workers=1,  # even with one worker for the independent reads
    )
    assert g.values == {
        "pods": "all pods",
        "deployment": {"name": "backend"},
        "replicasets": ["backend-rs-1", "backend-rs-2"],
    }
    assert [(s.source, s.status) for s in run.sources] == [
        ("pods", "ok"),
        ("deployment", "ok"),
        ("replicasets", "ok"),
    ]


def test_a_failed_parent_or_nothing_to_read_leaves_no_record() -> None:
    calls: list[str] = []

    def missing() -> None:
        raise ValueError("deployment 'nope' not found in namespace 'production'")

    def child(v: object) -> str:
        calls.append(f"child of {v}")
        return "read"

    run = Run("outage", quiet=True)
    g = run.gather(
        {
            "deployment": missing,
            "replicasets": After("deployment", child),
            "frontend": lambda: NOT_READ,
            "logs of frontend": After("frontend", child),
            "nodes": lambda: 3,
            "grandchild": After("replicasets", child),
        }
    )
    assert calls == []  # nothing waiting for a failed or empty read ran
    assert [(s.source, s.status) for s in run.sources] == [
        ("deployment", "failed"),
        ("nodes", "ok"),
    ]
    assert "not found" in run.sources[0].error
    assert set(g.values) == {"nodes"} and set(g.errors) == {"deployment"}


def test_a_chain_runs_in_order_and_a_failing_child_is_its_own_record() -> None:
    def broken(_: object) -> None:
        raise OSError("connection reset by peer")

    run = Run("outage", quiet=True)
    g = run.gather(
        {
            "logs": After("pods", lambda pods: f"tail of {pods[0]}"),
            "pods": After("deployment", lambda d: [f"{d}-abc12"]),
            "deployment": lambda: "backend",
            "previous logs": After("pods", broken),
        }
    )
    assert g.values == {
        "logs": "tail of backend-abc12",
        "pods": ["backend-abc12"],
        "deployment": "backend",
    }
    # recorded in the order given, whatever order they ran in
    assert [(s.source, s.status) for s in run.sources] == [
        ("logs", "ok"),
        ("pods", "ok"),
        ("deployment", "ok"),
        ("previous logs", "failed"),
    ]
    assert run.sources[3].error == "OSError: connection reset by peer"


@pytest.mark.parametrize(
    "tasks",
    [
        {"replicasets": After("deployment", lambda d: d)},
        {"a": After("b", lambda v: v), "b": After("a", lambda v: v)},
    ],
    ids=["parent not gathered", "waits for itself"],
)
def test_a_task_that_can_never_start_is_refused_before_anything_runs(tasks: dict) -> None:
    ran: list[str] = []
    tasks = {"nodes": lambda: ran.append("nodes"), **tasks}
    with pytest.raises(ValueError, match="waits for .*which is not gathered or waits for it"):
        Run("outage", quiet=True).gather(tasks)
    assert ran == []
