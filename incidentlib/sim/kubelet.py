"""The simulated kubelet's view of a container: what state it is in at a given moment, computed
from when it started and how its image behaves (pure functions of time, so restarts grow as time
passes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .clock import iso

PULL_SECONDS = 1.0
MAX_BACKOFF = 300.0


@dataclass(frozen=True)
class Behavior:
    """How a container image behaves when the kubelet runs it."""

    mode: str = "healthy"  # healthy | crashloop | oomkilled | imagepull | flapping
    period_seconds: float = 1800.0  # flapping: runs this long, crashes, restarts at once
    exit_code: int = 1
    reason: str = "Error"
    run_seconds: float = 5.0
    message: str = ""
    previous_log: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_spec(cls, spec: dict) -> Behavior:
        mode = spec.get("mode", "healthy")
        if mode == "oomkilled":
            defaults = {"exit_code": 137, "reason": "OOMKilled"}
        else:
            defaults = {"exit_code": 1, "reason": "Error"}
        return cls(
            mode=mode,
            exit_code=int(spec.get("exitCode", defaults["exit_code"])),
            reason=spec.get("reason", defaults["reason"]),
            run_seconds=float(spec.get("runSeconds", 5.0)),
            message=spec.get("message", ""),
            period_seconds=float(spec.get("periodSeconds", 1800.0)),
            previous_log=tuple(spec.get("previousLog", ())),
        )


def backoff(k: int) -> float:
    """The kubelet's restart back-off after the k-th crash (10 s doubling, capped at 5 min)."""
    return min(10.0 * (2**k), MAX_BACKOFF)


@dataclass
class Attempt:
    start: float
    end: float


def crash_attempts(start: float, now: float, run_seconds: float) -> list[Attempt]:
    """Every run of a crash-looping container that has finished by now."""
    out: list[Attempt] = []
    s = start + PULL_SECONDS
    k = 0
    while s + run_seconds <= now:
        out.append(Attempt(s, s + run_seconds))
        s = s + run_seconds + backoff(k)
        k += 1
    return out


@dataclass
class ContainerView:
    """A container's state at one moment, ready to become a containerStatus."""

    state: dict
    last_state: dict
    restarts: int
    ready: bool
    started: bool
    attempts: list[Attempt]


def container_view(
    behavior: Behavior, start: float, now: float, *, pod: str, container: str
) -> ContainerView:
    """The state of a container started (scheduled) at `start`, seen at `now`."""
    if now < start + PULL_SECONDS and behavior.mode != "imagepull":
        return ContainerView({"waiting": {"reason": "ContainerCreating"}}, {}, 0, False, False, [])
    if behavior.mode == "healthy":
        return ContainerView(
            {"running": {"startedAt": iso(start + PULL_SECONDS)}}, {}, 0, True, True, []
        )
    if behavior.mode == "imagepull":
        reason = "ErrImagePull" if int(now - start) % 20 < 5 else "ImagePullBackOff"
        msg = behavior.message or "Back-off pulling image"
        return ContainerView(
            {"waiting": {"reason": reason, "message": msg}}, {}, 0, False, False, []
        )
    if behavior.mode == "flapping":
        k = int((now - start - PULL_SECONDS) // behavior.period_seconds)
        running = {
            "running": {"startedAt": iso(start + PULL_SECONDS + k * behavior.period_seconds + 1)}
        }
        if k == 0:
            return ContainerView(
                {"running": {"startedAt": iso(start + PULL_SECONDS)}}, {}, 0, True, True, []
            )
        end = start + PULL_SECONDS + k * behavior.period_seconds
        begin = start + PULL_SECONDS + (k - 1) * behavior.period_seconds + (1 if k > 1 else 0)
        terminated = {
            "exitCode": behavior.exit_code,
            "reason": behavior.reason,
            "startedAt": iso(begin),
            "finishedAt": iso(end),
        }
        runs = [
            Attempt(
                start + PULL_SECONDS + i * behavior.period_seconds,
                start + PULL_SECONDS + (i + 1) * behavior.period_seconds,
            )
            for i in range(k)
        ]
        return ContainerView(running, {"terminated": terminated}, k, True, True, runs)
    attempts = crash_attempts(start, now, behavior.run_seconds)
    if not attempts:
        return ContainerView(
            {"running": {"startedAt": iso(start + PULL_SECONDS)}}, {}, 0, False, True, []
        )
    last = attempts[-1]
    terminated = {
        "exitCode": behavior.exit_code,
        "reason": behavior.reason,
        "startedAt": iso(last.start),
        "finishedAt": iso(last.end),
    }
    delay = int(backoff(len(attempts) - 1))
    waiting = {
        "reason": "CrashLoopBackOff",
        "message": f"back-off {_delay_text(delay)} restarting failed container={container} "
        f"pod={pod}",
    }
    return ContainerView(
        {"waiting": waiting}, {"terminated": terminated}, len(attempts), False, False, attempts
    )


def _delay_text(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"
