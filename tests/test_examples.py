"""The runnable examples: configs checked by the real tools, the compose file by its schema, the apps run.

Prometheus, Alertmanager and their rules go through Debian's `promtool` and `amtool`; the compose
file through the compose-spec JSON schema (vendored by the check-jsonschema package) and a
structural check that every file, port and host it names exists; the example apps run offline.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llmcost.budgets import load_budgets
from otel_llmcost.budgets.rules import RULES_FILE, alertmanager_config
from otel_llmcost.cli import main
from otel_llmcost.collector.config import load_config
from otel_llmcost.dashboard import recorded_dimensions

from ._prom import AMTOOL, PROMTOOL

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
COMPOSE = EXAMPLES / "docker-compose.yml"
RULES_ARGS = [
    "rules",
    "--budgets",
    "examples/budgets.yaml",
    "--out",
    "examples/prometheus/rules",
    "--alertmanager",
    "examples/alertmanager/alertmanager.yml",
]


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load(COMPOSE)
    return doc


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)


# --- the Prometheus and Alertmanager configs, by the real tools ---------------------------------

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (scripts/install-observability.sh)"
)


@needs_promtool
def test_prometheus_config_and_its_rule_files_check() -> None:
    assert PROMTOOL is not None
    proc = run(PROMTOOL, "check", "config", str(EXAMPLES / "prometheus" / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the rule file path resolved (relative to the config) and its rules were read
    assert re.search(r"SUCCESS: \d+ rules found", proc.stdout + proc.stderr), proc.stdout + proc.stderr


@needs_promtool
def test_committed_rules_check_and_their_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    rules = EXAMPLES / "prometheus" / "rules"
    proc = run(PROMTOOL, "check", "rules", str(rules / RULES_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run(PROMTOOL, "test", "rules", str(rules / "prometheus-rules.test.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (scripts/install-observability.sh)")
def test_alertmanager_config_checks() -> None:
    assert AMTOOL is not None
    proc = run(AMTOOL, "check-config", str(EXAMPLES / "alertmanager" / "alertmanager.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_committed_rules_and_alertmanager_config_are_not_stale(capsys: pytest.CaptureFixture[str]) -> None:
    cwd = Path.cwd()
    os.chdir(ROOT)  # the generated headers name the budgets file as given on the command line
    try:
        assert main([*RULES_ARGS, "--check"]) == 0, capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert load(EXAMPLES / "alertmanager" / "alertmanager.yml") == alertmanager_config()


def test_rules_check_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules"
    assert main(["rules", "--budgets", str(EXAMPLES / "budgets.yaml"), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["rules", "--budgets", str(EXAMPLES / "budgets.yaml"), "--out", str(out), "--check"]) == 0
    (out / RULES_FILE).write_text((out / RULES_FILE).read_text() + "# edited by hand\n")
    assert main(["rules", "--budgets", str(EXAMPLES / "budgets.yaml"), "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and RULES_FILE in err and "otel-llmcost rules --budgets" in err


# --- the compose file: schema and structure -----------------------------------------------------


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    if importlib.util.find_spec("check_jsonschema") is None or importlib.util.find_spec("jsonschema") is None:
        pytest.skip("check-jsonschema (which vendors the compose-spec schema) is not installed")
    import jsonschema

    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(text))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    # and the schema does catch mistakes
    broken = json.loads(json.dumps(compose))
    broken["services"]["grafana"]["ports"] = "3000:3000"
    broken["services"]["app"]["restart"] = ["always"]
    assert len(list(validator.iter_errors(broken))) >= 2


def test_compose_services_files_and_hosts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"app", "sessions-app", "otelcol", "collector", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        for dep in service.get("depends_on", ()):
            assert dep in services, f"{name} depends on unknown {dep}"
        for volume in service.get("volumes", ()):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (EXAMPLES / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"
        for port in service.get("ports", ()):
            assert re.fullmatch(r"\d+:\d+", port), port
    # the image: built from the repository; every COPY source exists in the build context
    build = services["app"]["build"]
    context = (EXAMPLES / build["context"]).resolve()
    assert context == ROOT
    dockerfile = context / build["dockerfile"]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (context / source).exists(), f"Dockerfile copies missing {source}"


def _targets(config: dict[str, Any], job: str) -> list[str]:
    (scrape,) = [s for s in config["scrape_configs"] if s["job_name"] == job]
    return [t for sc in scrape["static_configs"] for t in sc["targets"]]


def test_the_stack_is_wired_together(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = load(EXAMPLES / "prometheus" / "prometheus.yml")
    # Prometheus scrapes the apps' and the collector's /metrics at the ports they listen on.
    assert _targets(prometheus, "llm-apps") == ["app:9464", "sessions-app:9464"]
    assert services["app"]["command"][-2:] == ["--port", "9464"]
    collector = load_config(EXAMPLES / "collector" / "otel-llmcost.yaml")
    assert _targets(prometheus, "otel-llmcost-collector") == [f"collector:{collector.prometheus[1]}"]
    for app in ("app", "sessions-app"):
        env = services[app]["environment"]
        assert env["OTEL_LLMCOST_PROMETHEUS_HOST"] == "0.0.0.0"  # reachable from the Prometheus container
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otelcol:4318"
    assert collector.prometheus[0] == "0.0.0.0" and collector.grpc is not None and collector.grpc.host == "0.0.0.0"
    # The rules Prometheus loads are the committed ones; alerts go to the Alertmanager service.
    assert prometheus["rule_files"] == [f"rules/{RULES_FILE}"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus"] == "./prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    # The OpenTelemetry Collector forwards traces to our collector's OTLP/gRPC port.
    otelcol = load(EXAMPLES / "otelcol" / "config.yaml")
    assert otelcol["exporters"]["otlp/llmcost"]["endpoint"] == f"collector:{collector.grpc.port}"
    for kind, pipeline in otelcol["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, ()):
                assert component in otelcol[section], f"{kind} pipeline uses undefined {section[:-1]} {component}"
    assert "otlp/llmcost" in otelcol["service"]["pipelines"]["traces"]["exporters"]
    assert otelcol["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    # The collector records the labels the budgets filter on and the dashboard groups by.
    budgets = load_budgets(EXAMPLES / "budgets.yaml")
    dashboard = json.loads((EXAMPLES / "grafana" / "otel-llmcost.json").read_text())
    assert collector.dimensions == budgets.dimensions == recorded_dimensions(dashboard)
    for app in ("app", "sessions-app"):
        assert services[app]["environment"]["OTEL_LLMCOST_DIMENSIONS"] == ",".join(collector.dimensions)


def test_grafana_provisioning(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    datasources = load(EXAMPLES / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["access"] == "proxy" and ds["name"]
    assert ds["url"] == "http://prometheus:9090" and "9090:9090" in compose["services"]["prometheus"]["ports"]
    providers = load(EXAMPLES / "grafana" / "provisioning" / "dashboards" / "otel-llmcost.yaml")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["name"]
    folder = provider["options"]["path"]
    mounted = [c for c, h in mounts.items() if h == "./grafana/otel-llmcost.json"]
    assert mounted and all(Path(c).parent == Path(folder) for c in mounted)
    # the dashboard takes its data source from a variable, which picks the provisioned default
    dashboard = json.loads((EXAMPLES / "grafana" / "otel-llmcost.json").read_text())
    (var,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert var["type"] == "datasource" and var["query"] == ds["type"] and ds["isDefault"] is True


# --- the example applications run offline ----------------------------------------------------------


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    return {**env, "PYTHONWARNINGS": "error", "OTEL_LLMCOST_PROMETHEUS_PORT": "0"}


def test_sessions_app_runs_offline_and_spans_carry_the_cost() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "sessions_app.py"), "--tickets", "4"],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    tickets = re.findall(r"^(ticket-\d+): (\d+) calls, \$([0-9.E-]+)$", proc.stdout, re.M)
    assert [t[0] for t in tickets] == [f"ticket-{n:05d}" for n in range(4)], proc.stdout
    assert all(int(calls) == 3 for _, calls, _ in tickets)  # triage, search, answer
    assert all(Decimal(cost) > 0 for _, _, cost in tickets)
    totals = re.search(r"total \$(\S+) \(the metrics' sum; the spans say \$(\S+)\)", proc.stdout)
    assert totals is not None, proc.stdout
    metrics, spans = totals.groups()
    assert Decimal(metrics) == Decimal(spans) == sum(Decimal(c) for _, _, c in tickets)
    # the first ticket fills the prompt cache; later answers read the knowledge base from it
    assert Decimal(tickets[0][2]) > max(Decimal(c) for _, _, c in tickets[1:])


def test_quickstart_runs_without_a_key() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no OPENAI_API_KEY" in proc.stdout and "spent so far $0" in proc.stdout
