"""The local Prometheus that tests, benchmarks and the demo start: a real server on loopback."""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, make_wsgi_app

import bot.demo.local_prometheus as local_prometheus
from bot.core.errors import ExternalError
from bot.core.net import free_port
from bot.demo.local_prometheus import LocalPrometheus


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def exporter():
    """A `prometheus_client` exporter on loopback: (target, its counter)."""
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "requests served", registry=registry)
    port = free_port()
    server = make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{port}", requests
    finally:
        server.shutdown()
        server.server_close()


def _query(url: str, expr: str) -> list:
    return httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()["data"]["result"]


def test_local_prometheus__has_scraped_its_targets_before_it_returns(exporter):
    target, requests = exporter
    with LocalPrometheus(scrape_targets=[target]) as prom:
        # The sample from before the traffic is already stored: the traffic below is a rate, however late
        # a busy machine's next scrape comes.
        [up] = _query(prom.url, f'up{{instance="{target}"}}')
        assert up["value"][1] == "1"
        assert _query(prom.url, "demo_requests_total")
        requests.inc(30)
        deadline = time.monotonic() + 120
        while not (rate := _query(prom.url, "increase(demo_requests_total[5m])")) or rate[0]["value"][1] == "0":
            assert time.monotonic() < deadline, "the increase never showed"
            time.sleep(0.5)
        assert float(rate[0]["value"][1]) > 0


def test_local_prometheus__a_target_never_scraped_is_an_error_naming_it(monkeypatch):
    monkeypatch.setattr(local_prometheus, "SCRAPED_TIMEOUT_S", 3.0)
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ExternalError, match=f"had not scraped {target} within 3s"):
        with LocalPrometheus(scrape_targets=[target]):
            pass
