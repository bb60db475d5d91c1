"""End to end: a process spends, Prometheus evaluates the generated rules, Alertmanager delivers the 80% alert.

Real Debian `prometheus` and `prometheus-alertmanager`, started here on 127.0.0.1 with temporary
directories and 1 s scrape/evaluation intervals. The target is the real recorder and
`PrometheusCostMetricReader` endpoint, fed by spans through the `CostSpanProcessor`. The
Alertmanager configuration is the generated example with every receiver pointed at a local
webhook (one path per receiver), so the test also checks routing by severity and that the 50%
alert is inhibited by the 80% one.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server

from otel_llmcost.budgets import generate, load_budgets
from otel_llmcost.budgets.rules import ALERTMANAGER_FILE, RULES_FILE
from otel_llmcost.export import PrometheusCostMetricReader, cost_meter_provider
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import default_pricer
from otel_llmcost.processor import CostSpanProcessor

from ._prom import ALERTMANAGER, PROMETHEUS, free_port, processes, query, start_prometheus, wait_ready

__all__ = ["processes"]  # the fixture, imported for pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        PROMETHEUS is None or ALERTMANAGER is None,
        reason="prometheus / prometheus-alertmanager are not installed (scripts/install-observability.sh)",
    ),
]

BUDGETS = """
dimensions: [environment]
budgets:
  - name: e2e-hourly
    title: the e2e environment
    filter: {environment: e2e}
    window: 1h
    limit_usd: 1
    for: 2s
"""
DEADLINE_S = 60.0


class Webhook:
    """A local Alertmanager webhook receiver: every POST body, with its path, goes into a queue."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.put((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class App:
    """The process that spends: spans priced by CostSpanProcessor, /metrics from the recorder."""

    def __init__(self) -> None:
        self.recorder = Recorder(("environment",))
        self.registry = CollectorRegistry(auto_describe=True)
        self.meter_provider = cost_meter_provider(
            [PrometheusCostMetricReader(self.recorder, registry=self.registry)], catalog_version=lambda: "e2e"
        )
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(
            CostSpanProcessor(None, pricer=default_pricer(), recorder=self.recorder)
        )
        self.tracer = self.tracer_provider.get_tracer("e2e")
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = self.server.server_address[1]

    def chat(self, input_tokens: int) -> None:
        """One gpt-4o call in environment e2e ($2.50 per million input tokens)."""
        attributes = {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": 0,
            "llm.property.environment": "e2e",
        }
        with self.tracer.start_as_current_span("chat gpt-4o", attributes=attributes):
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def test_the_80_percent_alert_reaches_the_webhook(tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    (tmp_path / "budgets.yaml").write_text(BUDGETS.lstrip())
    generate(load_budgets(tmp_path / "budgets.yaml"), tmp_path / "rules")

    webhook = Webhook()
    app = App()
    try:
        # Alertmanager: the generated example, each receiver replaced by the local webhook, short waits.
        am_config = yaml.safe_load((tmp_path / "rules" / ALERTMANAGER_FILE).read_text())
        am_config["receivers"] = [
            {"name": r["name"], "webhook_configs": [{"url": f"http://127.0.0.1:{webhook.port}/{r['name']}"}]}
            for r in am_config["receivers"]
        ]
        am_config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
        am_port = free_port()
        am_log = tmp_path / "alertmanager.log"
        with am_log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        ALERTMANAGER,
                        f"--config.file={tmp_path / 'alertmanager.yml'}",
                        f"--storage.path={tmp_path / 'am-data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_ready(f"http://127.0.0.1:{am_port}/-/ready", processes[-1], am_log)

        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules" / RULES_FILE)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": [f"127.0.0.1:{app.port}"]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        prom_port, prom_log = start_prometheus(tmp_path / "prometheus.yml", tmp_path, processes)
        start = time.monotonic()

        def wait_for(promql: str) -> list[dict[str, Any]]:
            while not (result := query(prom_port, promql)):
                assert time.monotonic() - start < DEADLINE_S, f"{promql}: no result\n{prom_log.read_text()[-3000:]}"
                time.sleep(0.5)
            return result

        # Without traffic the budget's spend is 0, not absent; the limit is a recorded series.
        assert float(wait_for('budget:llm_cost_usd:spend{budget="e2e-hourly"}')[0]["value"][1]) == 0
        assert wait_for('llm_budget_limit_usd{budget="e2e-hourly"}')[0]["value"][1] == "1"

        # A first $0.01 call, seen by ~10 scrapes: increase() extrapolates by up to one interval,
        # which on a short history could push 82% past 95%.
        app.chat(4_000)
        wait_for('count_over_time(llm_cost_usd_total{environment="e2e"}[1h]) >= 10')
        app.chat(324_000)  # $0.81: $0.82 spent of $1

        while True:
            remaining = DEADLINE_S - (time.monotonic() - start)
            assert remaining > 0, f"no warning alert within {DEADLINE_S} s:\n{prom_log.read_text()[-3000:]}"
            try:
                path, body = webhook.received.get(timeout=remaining)
            except queue.Empty:
                continue
            firing = [a for a in body["alerts"] if a["status"] == "firing"]
            if path == "/llm-costs-email" and any(a["labels"]["severity"] == "warning" for a in firing):
                break
            assert path != "/llm-costs-slack", f"the critical alert fired at 82%: {body}"
        (alert,) = [a for a in firing if a["labels"]["severity"] == "warning"]
        assert alert["labels"] | {"alertname": "LLMBudgetThresholdReached"} == {
            "alertname": "LLMBudgetThresholdReached",
            "budget": "e2e-hourly",
            "window": "1h",
            "severity": "warning",
            "threshold": "0.8",
        }
        summary = alert["annotations"]["summary"]
        assert summary.startswith("Hourly LLM spend for the e2e environment is at "), summary
        assert " of its $1 budget ($0.8" in summary or " of its $1 budget ($0.9" in summary, summary
        # the 50% (info) alert of the same budget is inhibited by the 80% one
        while not webhook.received.empty():
            path, body = webhook.received.get_nowait()
            assert path != "/llm-costs-webhook", f"the info alert was not inhibited: {body}"
    finally:
        app.close()
        webhook.close()
