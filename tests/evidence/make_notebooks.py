"""Regenerate the fixture notebooks of tests/evidence/notebooks (one per behaviour, papermill's
style).

.venv/bin/python tests/evidence/make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent / "notebooks"

PARAMS = """namespace = "production"  # the namespace to look at
count = 3  # how many rows to make
ratio = 0.5  # a share between 0 and 1
flag = False  # a switch
dsn = None  # libpq conninfo (a password goes to PGPASSWORD)
since: str = "30m"  # the incident window
replicas: int | None = None  # an optional whole number
incident_id = None  # the incident this run belongs to
"""

START = """import os

from incidentlib.notebook.run import Run
from incidentlib.severity import assess

run = Run("{name}", params={{"namespace": namespace, "count": count}})"""

FINISH = "run.finish(assess(error_rate=0.0))"

CHART = """import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(["a", "b", "c"], [3, 1, 2], color="#ff0000")
ax.set_title("pods by status")
plt.show()"""

TABLE = """import pandas as pd

pods = pd.DataFrame({"name": [f"pod-{i}" for i in range(count)], "restarts": list(range(count))})
run.glue("pods", pods)
pods"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "ok": [
        ("md", "# OK fixture\nRuns every cell, glues a table, draws a chart."),
        ("code", START.format(name="ok")),
        (
            "code",
            'print("dsn seen by the kernel:", dsn)\nprint("PGPASSWORD in the kernel:", "set" if '
            'os.environ.get("PGPASSWORD") else "unset")',
        ),
        ("code", TABLE),
        ("code", CHART),
        ("code", FINISH),
    ],
    "raises": [
        ("md", "# Raises fixture"),
        ("code", START.format(name="raises")),
        ("code", 'print("before the failure")'),
        ("code", 'raise RuntimeError(f"boom in namespace {namespace} <b>not markup</b>")'),
        ("code", 'print("never runs")'),
    ],
    "dies": [
        ("md", "# Kernel dies fixture"),
        ("code", START.format(name="dies")),
        ("code", "os._exit(3)"),
        ("code", 'print("never runs")'),
    ],
    "sleeps": [
        ("md", "# Sleeps past the timeout fixture"),
        ("code", START.format(name="sleeps")),
        ("code", "import time\ntime.sleep(60)"),
        ("code", 'print("never runs")'),
    ],
    "leaks": [
        (
            "md",
            "# Leaks fixture: prints, glues and raises secrets without redaction (the archive "
            "must scrub them)",
        ),
        ("code", START.format(name="leaks")),
        (
            "code",
            "# the canaries are assembled at run time, so only outputs can carry them\n"
            'C = "canary" + "-"\n'
            'print("connecting with", dsn, "password", os.environ.get("PGPASSWORD"))\n'
            'print(f"GET /api Authorization: Bearer {C}bearer-7d1f9a2c")\n'
            'print(f"db login password={C}logpw-55c1 ok")',
        ),
        (
            "code",
            "import pandas as pd\nimport scrapbook as sb\n\n"
            'raw = pd.DataFrame({"line": [f"token={C}token-9e8f7a6b", "fine"], "n": [1, 2]})\n'
            'sb.glue("raw_lines", raw)\nsb.glue("raw_text", f"secret={C}secret-1a2b3c")\nraw',
        ),
        (
            "code",
            "from IPython.display import HTML, display\n\n"
            'display(HTML(f"<pre>password=&quot;{C}htmlpw-77ab&quot;</pre>"))',
        ),
        ("code", FINISH),
        ("code", 'raise RuntimeError(f"failed to connect with {dsn} password={C}errpw-31d4")'),
    ],
    "kernel": [
        ("md", "# Kernel fixture\nSays how its kernel is reached (transport, directory mode)."),
        (
            "code",
            "import json\nimport os\n\nfrom ipykernel import get_connection_file\n\n"
            "info = json.load(open(get_connection_file()))\n"
            'where = os.path.dirname(info["ip"]) if info["transport"] == "ipc" else None\n'
            'print("transport:", info["transport"])\n'
            'print("directory mode:", oct(os.stat(where).st_mode & 0o777) if where else None)\n'
            'print("connection file mode:", oct(os.stat(get_connection_file()).st_mode & 0o777))',
        ),
    ],
    "unreachable": [
        (
            "md",
            "# Unreachable fixture\nThe cluster and the database are both down: the evidence must "
            "say so.",
        ),
        ("code", START.format(name="unreachable") + "\nfrom incidentlib import kube, pg"),
        (
            "code",
            "import tempfile\n\n"
            'cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)\n'
            'cfg.write("apiVersion: v1\\nkind: Config\\ncurrent-context: down\\n'
            "clusters: [{name: down, cluster: {server: 'http://127.0.0.1:9'}}]\\n"
            "contexts: [{name: down, context: {cluster: down, user: u}}]\\nusers: [{name: u, "
            'user: {token: x}}]\\n")\n'
            "cfg.close()\n"
            'with run.source("kubernetes: pods") as kube_src:\n'
            "    cluster = kube.connect(kubeconfig=cfg.name)\n"
            '    cluster.get_json("/api/v1/namespaces/production/pods", timeout=2)',
        ),
        (
            "code",
            'with run.source("postgresql: connections") as pg_src:\n'
            '    pg.connect(dsn or "host=127.0.0.1 port=9 dbname=app user=x", connect_timeout_s=2)',
        ),
        ("code", "run.sources_table()"),
        ("code", "run.finish(assess(service_down=not kube_src.ok, database_reachable=pg_src.ok))"),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    params = nbf.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    out = [nbf.v4.new_markdown_cell(cells[0][1]), params]
    for kind, text in cells[1:]:
        out.append(nbf.v4.new_markdown_cell(text) if kind == "md" else nbf.v4.new_code_cell(text))
    nb.cells = out
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name}-{i}"
    return nb


if __name__ == "__main__":
    HERE.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbf.write(build(name, cells), HERE / f"{name}.ipynb")
        print(HERE / f"{name}.ipynb")
