"""configure(budgets=...): the guard from a budgets file, end to end through a real ``openai`` client,
the Prometheus endpoint over HTTP, environment variables, a bad file, and Redis with both failure
policies visible in ``llm_budget_guard_errors_total``."""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_llmcost
from otel_llmcost.budgets import runtime
from otel_llmcost.budgets.spec import BudgetsError, load_budgets
from otel_llmcost.budgets.state import fixed_window
from otel_llmcost.config import (
    OTEL_LLMCOST_BUDGETS,
    OTEL_LLMCOST_BUDGETS_REDIS_URL,
    OTEL_LLMCOST_GUARD_FAILURE_POLICY,
    ConfigError,
)

from ._redis_server import REDIS_MISSING, Server, free_port
from .fakes.openai_server import FakeOpenAIServer, serve

pytestmark = pytest.mark.integration

D = Decimal
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Draft a reply to the customer."}]
BUDGETS = """\
dimensions: [feature]
budgets:
  - name: per-user-daily
    per: user
    window: 1d
    limit_usd: 0.000001
    action: raise
  - name: alerts-only            # no action: alerts, never enforced by the guard
    window: 1d
    limit_usd: 0.000001
rate_limits:
  - name: search-requests
    policy: "100;w=60;u=request;s=feature"
"""


@pytest.fixture()
def budgets_file(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS, encoding="utf-8")
    return path


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    with serve() as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (OTEL_LLMCOST_BUDGETS, OTEL_LLMCOST_BUDGETS_REDIS_URL, OTEL_LLMCOST_GUARD_FAILURE_POLICY):
        monkeypatch.delenv(var.name, raising=False)


@pytest.fixture()
def setups() -> Iterator[list[otel_llmcost.LLMCostSetup]]:
    made: list[otel_llmcost.LLMCostSetup] = []
    yield made
    for setup in made:
        setup.shutdown()
    assert runtime.current_guard() is None  # shutdown uninstalls the guard


def configure(setups: list[otel_llmcost.LLMCostSetup], **kwargs: Any) -> otel_llmcost.LLMCostSetup:
    setup = otel_llmcost.configure(
        tracer_provider=TracerProvider(), prometheus_port=free_port(), instrument=["openai"], **kwargs
    )
    setups.append(setup)
    return setup


def chat(server: FakeOpenAIServer) -> Any:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        return client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]


def scrape(setup: otel_llmcost.LLMCostSetup) -> dict[str, float]:
    """``{series as written: value}`` from one Prometheus-format scrape of the endpoint."""
    assert setup.prometheus_address is not None
    host, port = setup.prometheus_address
    body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        m = re.match(r"^(llm_budget_\w+)\{([^}]*)\} (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            keep = {k: v for k, v in labels.items() if not k.startswith("otel_scope_")}
            out[m.group(1) + "{" + ",".join(f"{k}={v}" for k, v in sorted(keep.items())) + "}"] = float(m.group(3))
    return out


def test_configure_with_a_budgets_file_guards_calls_and_exports_per_user_metrics(
    setups: list[otel_llmcost.LLMCostSetup], server: FakeOpenAIServer, budgets_file: Path
) -> None:
    setup = configure(setups, budgets=budgets_file)
    assert setup.guard is not None and runtime.current_guard() is setup.guard
    assert setup.recorder.dimensions == ("feature",)  # the file's dimensions, so its rules match
    for user in ("alice", "bob"):
        with otel_llmcost.user(user), otel_llmcost.properties(feature="search"):
            chat(server)  # the alert-only budget is long spent: it does not refuse
    with otel_llmcost.user("alice"), pytest.raises(otel_llmcost.BudgetExceededError) as info:
        chat(server)
    assert len(server.requests) == 2
    assert info.value.budget == "per-user-daily" and info.value.user == "alice"
    series = scrape(setup)
    # derived from the refusal: alice's spend over the limit
    alice = float(info.value.spend_usd / info.value.limit_usd)  # type: ignore[operator]
    assert series["llm_budget_user_utilization_ratio{budget=per-user-daily,user=alice}"] == pytest.approx(alice)
    assert "llm_budget_user_utilization_ratio{budget=per-user-daily,user=bob}" in series
    for threshold in ("0.5", "0.8", "0.95"):
        assert series[f"llm_budget_users_over_threshold{{budget=per-user-daily,threshold={threshold}}}"] == 2
    assert series["llm_budget_guard_breaches_total{action=raise,budget=per-user-daily}"] == 1
    assert not any(key.startswith("llm_budget_guard_errors") for key in series)


def test_budgets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    setups: list[otel_llmcost.LLMCostSetup],
    server: FakeOpenAIServer,
    budgets_file: Path,
) -> None:
    monkeypatch.setenv(OTEL_LLMCOST_BUDGETS.name, str(budgets_file))
    setup = configure(setups)
    assert setup.guard is not None and setup.guard.failure_policy == "open"
    with otel_llmcost.user("carol"):
        chat(server)
        with pytest.raises(otel_llmcost.BudgetExceededError):
            chat(server)


def test_a_loaded_budgets_file_is_accepted(setups: list[otel_llmcost.LLMCostSetup], budgets_file: Path) -> None:
    setup = configure(setups, budgets=load_budgets(budgets_file), dimensions=("feature", "environment"))
    assert setup.guard is not None and setup.guard.enforces
    assert setup.recorder.dimensions == ("feature", "environment")  # an explicit argument wins


def test_a_bad_budgets_file_raises_at_configure_with_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        BUDGETS.replace("window: 1d\n    limit_usd: 0.000001\n    action", "window: 2x\n    limit_usd: 1\n    action")
    )
    with pytest.raises(BudgetsError) as info:
        otel_llmcost.configure(tracer_provider=TracerProvider(), prometheus_port=0, instrument=False, budgets=bad)
    line = bad.read_text().splitlines().index("    window: 2x") + 1
    assert str(info.value).startswith(f"{bad}:{line}: budgets[0].window:")
    assert runtime.current_guard() is None
    setup = otel_llmcost.configure(tracer_provider=TracerProvider(), prometheus_port=0, instrument=False)
    try:
        assert setup.guard is None
    finally:
        setup.shutdown()


def test_a_bad_failure_policy_names_the_variable(monkeypatch: pytest.MonkeyPatch, budgets_file: Path) -> None:
    monkeypatch.setenv(OTEL_LLMCOST_GUARD_FAILURE_POLICY.name, "maybe")
    with pytest.raises(ConfigError, match="OTEL_LLMCOST_GUARD_FAILURE_POLICY='maybe'"):
        otel_llmcost.configure(tracer_provider=TracerProvider(), prometheus_port=0, budgets=budgets_file)


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[Server]:
    pytest.importorskip("redis", reason="the redis client is a test dependency (pip install redis)")
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_MISSING)
    srv = Server(free_port(), tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_shared_guard_and_its_failure_policy(
    monkeypatch: pytest.MonkeyPatch,
    setups: list[otel_llmcost.LLMCostSetup],
    server: FakeOpenAIServer,
    budgets_file: Path,
    redis_server: Server,
    policy: str,
) -> None:
    import redis

    monkeypatch.setenv(OTEL_LLMCOST_BUDGETS_REDIS_URL.name, redis_server.url)
    setup = configure(setups, budgets=budgets_file, guard_failure_policy=policy)
    with otel_llmcost.user("dana"):
        chat(server)
    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    start, _ = fixed_window(86400, time.time())
    stored = admin.hgetall(f"{{otel_llmcost}}:guard:per-user-daily:{start}:dana")
    admin.close()
    assert int(stored[b"s"]) > 0 and int(stored.get(b"r", 0)) == 0  # the spend is in Redis, for every process
    redis_server.stop()
    with otel_llmcost.user("erin"):
        if policy == "closed":
            with pytest.raises(otel_llmcost.BudgetExceededError) as info:
                chat(server)
            assert info.value.reason == "state_unavailable"
            assert len(server.requests) == 1
        else:
            chat(server)  # fail open: the call goes ahead unguarded
            assert len(server.requests) == 2
    series = scrape(setup)
    errors = {k: v for k, v in series.items() if k.startswith("llm_budget_guard_errors_total")}
    assert errors and all(f"policy={policy}," in k for k in errors)
    assert errors.get(f"llm_budget_guard_errors_total{{policy={policy},reason=unreachable}}", 0) >= 1
