"""`runbook serve` refuses a bad setup before it listens: no token off loopback, a parameter no
scenario declares, an incident id, a broken routes file; `apply` is dropped with a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from incidentlib.cli import main
from incidentlib.cli.serve import options, parser

from .helpers import make_notebooks


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_notebooks(tmp_path_factory.mktemp("notebooks"))


def serve(notebooks: Path, tmp_path: Path, *args: str) -> list[str]:
    return ["serve", "--notebooks", str(notebooks), "--outputs", str(tmp_path / "out"), *args]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--host", "0.0.0.0"), "listening on 0.0.0.0 needs a token: give --token-file"),
        (("-p", "replicas", "3"), "parameter 'replicas' is declared by no scenario"),
        (("-p", "incident_id", "INC-1"), "incident_id comes from the alert group"),
        (("--dedupe-window", "soon"), "--dedupe-window 'soon' is not a duration"),
        (
            ("--token-file", "/nonexistent/token"),
            "--token-file '/nonexistent/token' cannot be read",
        ),
        (("-p", "namespace", "Bad_NS"), "invalid namespace 'Bad_NS'"),
    ],
)
def test_a_bad_setup_is_refused_before_anything_listens(
    notebooks: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    assert main(serve(notebooks, tmp_path, *args)) == 1
    assert message in capsys.readouterr().err


def test_routes_and_defaults_are_checked_and_apply_is_dropped(
    notebooks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes: [{matchers: ['team=\"shop\"'], scenarios: [outage],\n"
        "  parameters: {namespace: '{{ labels.namespace }}'}}]\n"
    )
    token = tmp_path / "token"
    token.write_text("a-token-long-enough-0123\n")
    args = parser().parse_args(
        serve(
            notebooks,
            tmp_path,
            "--config",
            str(routes),
            "--token-file",
            str(token),
            "-p",
            "apply",
            "True",
            "-p",
            "latency_slo_ms",
            "300",
            "-p",
            "notify_webhook",
            "https://hooks.example.com/services/x",
        )[1:]
    )
    opts = options(args)
    err = capsys.readouterr().err
    assert "apply ignored" in err
    assert "the notify webhook is on the command line" in err and "services/x" not in err
    assert opts.catalog.defaults == {"latency_slo_ms": "300"}
    assert opts.notify_webhook == "https://hooks.example.com/services/x"  # posted by the server
    assert opts.token == "a-token-long-enough-0123"
    assert [r.name for r in opts.routing.routes][0] == "routes[0]"
    routes.write_text("routes: [{scenarios: [outage], parameters: {kubeconfig: '{{ labels.k }}'}}]")
    assert main(serve(notebooks, tmp_path, "--config", str(routes))) == 1
    assert "parameter 'kubeconfig' cannot come from an alert" in capsys.readouterr().err


def test_the_notify_webhook_comes_from_the_environment_off_the_command_line(
    notebooks: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook's URL is a credential (whoever has it posts to the channel): the Deployment
    passes it as $RUNBOOK_NOTIFY_WEBHOOK, since a command line is readable by every process on
    the node. Given there it is used without a word; a bad one is refused without its path."""
    monkeypatch.setenv("RUNBOOK_NOTIFY_WEBHOOK", "https://hooks.example.com/services/T0/B0/s3cret")
    opts = options(parser().parse_args(serve(notebooks, tmp_path)[1:]))
    assert opts.notify_webhook == "https://hooks.example.com/services/T0/B0/s3cret"
    assert capsys.readouterr().err == ""
    assert "RUNBOOK_NOTIFY_WEBHOOK" not in os.environ  # the kernels it starts never see it
    flag = ("--notify-webhook", "https://other.example.com/hook")
    opts = options(parser().parse_args(serve(notebooks, tmp_path, *flag)[1:]))
    assert opts.notify_webhook == "https://other.example.com/hook"  # the command line wins...
    assert "set $RUNBOOK_NOTIFY_WEBHOOK instead" in capsys.readouterr().err  # ...with a warning
    monkeypatch.setenv("RUNBOOK_NOTIFY_WEBHOOK", "ftp://hooks.example.com/services/s3cret")
    assert main(serve(notebooks, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "$RUNBOOK_NOTIFY_WEBHOOK ftp://hooks.example.com is not an http(s) URL" in err
    assert "s3cret" not in err
    assert options(parser().parse_args(serve(notebooks, tmp_path)[1:])).notify_webhook is None
