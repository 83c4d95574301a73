"""The service's recent commits: `git log --oneline` of its checkout, with commit times, for "what
changed"."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd

from ..errors import InvalidParameter, SourceUnavailable


def git_log(repo_path: str | Path, *, count: int = 10, timeout: float = 10) -> pd.DataFrame:
    """`git log --oneline -N` of a repository with commit times: columns commit, committed, author,
    subject."""
    path = Path(repo_path)
    if not path.is_dir():
        raise InvalidParameter(
            f"repo_path {str(repo_path)!r} is not a directory; give the service's git checkout"
        )
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "log", f"-{int(count)}", "--format=%h%x1f%cI%x1f%an%x1f%s"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise SourceUnavailable("git is not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"git log in {str(path)!r} took longer than {timeout:g} s") from None
    if out.returncode != 0:
        raise SourceUnavailable(f"git log in {str(path)!r} failed: {out.stderr.strip()[:300]}")
    rows = [line.split("\x1f") for line in out.stdout.splitlines() if line]
    df = pd.DataFrame(rows, columns=["commit", "committed", "author", "subject"])
    df["committed"] = pd.to_datetime(df["committed"], utc=True)
    return df
