import subprocess
import sys

from incidentlib import __version__
from incidentlib.cli import main


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("run", "list", "verify", "demo", "sim", "postmortem"):
        assert cmd in out


def test_unknown_command_lists_valid_ones(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "'frobnicate'" in err and "run" in err


def test_console_script_runs():
    exe = [sys.executable, "-m", "incidentlib.cli", "--version"]
    r = subprocess.run(exe, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and __version__ in r.stdout


def test_the_installed_script_keeps_exit_status_and_all_output():
    """`runbook` ends without interpreter teardown (cli.entry): the status is still the command's,
    and everything it printed reaches a pipe."""
    from pathlib import Path

    script = str(Path(sys.executable).with_name("runbook"))
    listed = subprocess.run([script, "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0
    in_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from incidentlib.cli import main; sys.exit(main(['list']))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.stdout == in_process.stdout and len(listed.stdout) > 1000
    bad = subprocess.run([script, "frobnicate"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr


def _run(*argv: str):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse refuses a bad option value itself
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_bad_values_are_refused_before_anything_runs(tmp_path):
    """Each is refused in one line naming the value and the rule; nothing is created."""
    outputs = tmp_path / "outputs"
    common = ["--outputs", str(outputs)]
    cases = [
        (
            ["run", "outage", "--incident", "INC-1\n", *common],
            1,
            "incident id 'INC-1\\n' is not valid",
        ),
        (
            ["run", "outage", "-p", "namespace", "Prod_NS", *common],
            1,
            "invalid namespace 'Prod_NS'",
        ),  # the scenario's own rule, before the kernel starts
        (["run", "outage", "-p", "replicas", "-1", *common], 1, "invalid replicas -1"),
        (  # argparse's own refusals exit 2
            ["run", "outage", "--cell-timeout", "nan", *common],
            2,
            "argument --cell-timeout: 'nan' is not a number of seconds from 0 to 86400",
        ),
        (["run", "outage", "--cell-timeout", "-5", *common], 2, "'-5' is not a number of seconds"),
    ]
    for argv, expected, message in cases:
        code, _, err = _run(*argv)
        assert code == expected and message in err, (argv, err)
        assert "Traceback" not in err
    assert not outputs.exists()
    (tmp_path / "file").write_text("x")
    code, _, err = _run("run", "outage", "--outputs", str(tmp_path / "file"))
    assert code == 1 and "is a file, not a directory" in err


def test_sim_on_a_port_in_use_says_so():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = _run("sim", "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port} (Address already in use)" in err
    assert "Traceback" not in err
