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
