"""A real Prometheus server on 127.0.0.1 for tests, benchmarks and `make demo`.

History is backfilled with `promtool tsdb create-blocks-from openmetrics` before the server
starts, so windows "before the promotion" hold data the caller chose. Optional scrape targets
(e.g. a `prometheus_client` exporter) add live series; `start` returns once each target has been
scraped, so traffic sent after it moves a counter Prometheus has already seen (a rate needs a sample
from before the change). The server always stops on exit.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import httpx

from bot.core.errors import ExternalError
from bot.core.net import free_port

READY_TIMEOUT_S = 30.0
SCRAPED_TIMEOUT_S = 60.0  # a target busy serving a model answers late


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ExternalError("Prometheus", f"`{name}` is not installed; run `bash scripts/test-services.sh` "
                                          "(Debian package `prometheus`)")
    return path


class LocalPrometheus:
    """``with LocalPrometheus(openmetrics=text) as prom: prom.url``."""

    def __init__(self, openmetrics: str | None = None, *, scrape_targets: Iterable[str] = (),
                 scrape_interval_s: int = 1, target_labels: Mapping[str, str] | None = None) -> None:
        self.openmetrics = openmetrics
        self.scrape_targets = tuple(scrape_targets)
        # Labels added to every scraped series, as a cluster's relabelling adds the pod's `app`.
        self.target_labels = dict(target_labels or {})
        self.scrape_interval_s = scrape_interval_s
        self.port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalPrometheus":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="promotion-bot-prometheus-"))
        try:
            data = self._dir / "data"
            data.mkdir()
            if self.openmetrics:
                self._backfill(data)
            config = self._dir / "prometheus.yml"
            config.write_text(self._config())
            self.port = free_port()
            with (self._dir / "prometheus.log").open("w") as log:  # the child keeps its own descriptor
                self._proc = subprocess.Popen(
                    [_binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
                     "--log.level=warn"],
                    stdout=subprocess.DEVNULL, stderr=log,
                )
            self._wait_ready()
            self._wait_scraped()
        except BaseException:
            self.stop()
            raise

    def _config(self) -> str:
        lines = ["global:", f"  scrape_interval: {self.scrape_interval_s}s",
                 f"  scrape_timeout: {self.scrape_interval_s}s",  # may not exceed the interval
                 f"  evaluation_interval: {self.scrape_interval_s}s"]
        if self.scrape_targets:
            targets = ", ".join(f'"{t}"' for t in self.scrape_targets)
            labels = ", ".join(f'{k}: "{v}"' for k, v in self.target_labels.items())
            lines += ["scrape_configs:", "  - job_name: local",
                      f"    static_configs: [{{targets: [{targets}], labels: {{{labels}}}}}]"]
        return "\n".join(lines) + "\n"

    def _backfill(self, data: Path) -> None:
        source = self._dir / "history.om"
        text = self.openmetrics if self.openmetrics.rstrip().endswith("# EOF") else self.openmetrics + "# EOF\n"
        source.write_text(text)
        done = subprocess.run([_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ExternalError("Prometheus", f"promtool could not backfill the history: {done.stderr.strip()[-500:]}")

    def _wait_ready(self) -> None:
        _wait(lambda: httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200, lambda: "was not ready",
              service="Prometheus", proc=self._proc, timeout_s=READY_TIMEOUT_S, log=self._dir / "prometheus.log")

    def _wait_scraped(self) -> None:
        """Until `up` is 1 for every target. On a busy machine the first scrape can come seconds after
        `/-/ready`: a caller's requests sent before it leave every later sample equal, and a rate of 0."""
        pending = set(self.scrape_targets)

        def scraped() -> bool:
            result = httpx.get(f"{self.url}/api/v1/query", params={"query": "up == 1"}, timeout=5.0).json()
            pending.difference_update(s["metric"].get("instance") for s in result.get("data", {}).get("result", []))
            return not pending

        if pending:
            _wait(scraped, lambda: f"had not scraped {', '.join(sorted(pending))}", service="Prometheus",
                  proc=self._proc, timeout_s=SCRAPED_TIMEOUT_S)

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _wait(done: Callable[[], bool], awaited: Callable[[], str], *, service: str, proc: subprocess.Popen,
          timeout_s: float, log: Path | None = None) -> None:
    """Poll ``done`` (an HTTP error or an answer that is not JSON counts as not yet) until it holds. The
    server exiting first, or ``timeout_s`` passing, is an ExternalError; ``awaited`` says what never came."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            output = f": {log.read_text()[-800:]}" if log is not None and log.exists() else ""
            raise ExternalError(service, f"the local server exited with {proc.returncode}{output}")
        try:
            if done():
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise ExternalError(service, f"the local server {awaited()} within {timeout_s:.0f}s")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen | None) -> None:
    """Terminate a server we started; kill it if it does not exit within 10 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LocalPushgateway:
    """``with LocalPushgateway() as gw: gw.url``: the real `prometheus-pushgateway` on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalPushgateway":
        self.port = free_port()
        # Memory only: Debian's build persists to /var/lib/prometheus by default, shared by every run.
        self._proc = subprocess.Popen([_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{self.port}",
                                       "--persistence.file=", "--log.level=warn"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200, lambda: "was not ready",
                  service="Pushgateway", proc=self._proc, timeout_s=READY_TIMEOUT_S)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        _stop(self._proc)
        self._proc = None
