"""The outage notebook's setup cell starts the cluster reads before pandas is loaded: checking the
parameters and opening the Run must not load it (in a fresh interpreter, as in a new kernel)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_parameters_and_run_do_not_load_pandas() -> None:
    code = textwrap.dedent(
        """
        import sys
        from incidentlib.notebook.run import Run
        from incidentlib.scenarios.outage_reading import Params

        params = dict(namespace="production", context=None, kubeconfig=None, since="30m",
                      replicas=3, rollout_timeout_s=60.0, apply=False, incident_id=None)
        cfg = Params.check(params)
        run = Run("outage", params=cfg.recorded())
        assert run.params["replicas"] == 3 and run.params["context"] is None, run.params
        print(sorted(m for m in ("pandas", "numpy", "pyarrow") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
