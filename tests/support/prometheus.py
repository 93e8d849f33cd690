"""A real Prometheus server for tests: Debian's ``prometheus`` on 127.0.0.1, in a directory of its own.

:func:`fleet_config` turns the shipped example configuration (``packaging/prometheus/prometheus.yml``)
into one for a test: the same job, metrics path and bearer-token authorization, its token file and
file_sd glob pointed at the test's files, and short intervals. :class:`PrometheusServer` runs it and
asks its HTTP API (stdlib ``urllib``; answers are JSON).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "packaging" / "prometheus"
RULES = PROMETHEUS_DIR / "edge-station.rules.yml"
RULES_TEST = PROMETHEUS_DIR / "edge-station.rules.test.yml"
EXAMPLE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = REPO / "packaging" / "grafana" / "edge-station-fleet.json"


def tool(name: str) -> str:
    """The path of ``promtool`` or ``prometheus``; a missing one is a failure (CI installs Debian's
    ``prometheus`` package, which has both), never a skip."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    assert found, f"{name} is missing: apt-get install prometheus (.ci/run does)"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fleet_config(root: Path, *, token_file: Path, targets: list[dict[str, Any]], interval_s: float = 1.0) -> Path:
    """Write ``root/prometheus.yml`` (the shipped example, pointed at ``token_file`` and a file_sd file
    in ``root/targets`` holding ``targets``) and return its path."""
    cfg = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    every = f"{interval_s:g}s"
    cfg["global"] = {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every}
    cfg["rule_files"] = [str(RULES)]
    (job,) = cfg["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    sd_dir = root / "targets"
    sd_dir.mkdir(parents=True, exist_ok=True)
    (sd_dir / "stations.json").write_text(json.dumps(targets))
    (sd,) = job["file_sd_configs"]
    sd["files"] = [str(sd_dir / "*.json")]
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class PrometheusServer:
    """``with PrometheusServer(config, root) as prom:`` a running server; stopped (and waited for) on exit."""

    def __init__(self, config: Path, root: Path):
        self.config = config
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        data = self.root / "tsdb"
        data.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [tool("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root)
        try:
            wait_for(self._ready, timeout=30, what=f"Prometheus to be ready on {self.url}", interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"Prometheus exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``; the ``data`` of a successful answer (a failed one raises, with its error)."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read() or b"{}")
        if doc.get("status") != "success":
            raise AssertionError(f"{path} {params}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query_range(self, expr: str, seconds: float = 10.0, step: str = "1s") -> list[dict[str, Any]]:
        """``expr`` over the last ``seconds`` (what a dashboard panel asks); the series it returned."""
        end = time.time()
        data = self.api("query_range", query=expr, start=f"{end - seconds:.3f}", end=f"{end:.3f}", step=step)
        assert data["resultType"] == "matrix", data
        return list(data["result"])

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        """The active (pending or firing) alerts, optionally of one alert rule."""
        return [a for a in self.api("alerts")["alerts"] if name is None or a["labels"].get("alertname") == name]

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])
