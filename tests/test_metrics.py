"""Metrics: DESIGN.md names on /metrics, bounded labels, exact money, OTLP-ready data."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from otel_llmcost.calls import extract_call
from otel_llmcost.config import ConfigError
from otel_llmcost.export import PrometheusCostMetricReader, cost_meter_provider
from otel_llmcost.metrics import Recorder
from otel_llmcost.pricing import Pricer

from .conftest import Pipeline


def record(recorder: Recorder, pricer: Pricer, **attrs: object) -> None:
    base = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    call = extract_call({**base, **attrs})
    assert call is not None
    recorder.record(call, pricer.price(call.provider, call.model, call.usage), duration_s=1.5)


def scrape(recorder: Recorder) -> str:
    registry = CollectorRegistry(auto_describe=True)
    provider = cost_meter_provider(
        [PrometheusCostMetricReader(recorder, registry=registry)], catalog_version=lambda: "test"
    )
    try:
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()


def test_prometheus_names_match_design(pricer: Pricer) -> None:
    rec = Recorder(("feature",))
    record(rec, pricer, **{"llm.property.feature": "search", "gen_ai.usage.cache_read.input_tokens": 200})
    record(rec, pricer, **{"gen_ai.request.model": "unknown-model"})
    text = scrape(rec)
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    assert {
        ("llm_cost_usd_total", "counter"),
        ("llm_requests_total", "counter"),
        ("llm_tokens_total", "counter"),
        ("llm_request_cost_usd", "histogram"),
        ("gen_ai_client_token_usage", "histogram"),
        ("gen_ai_client_operation_duration_seconds", "histogram"),
    } <= families
    assert re.search(r'^llm_cost_usd_total\{.*feature="search".*model="gpt-4o".*\} 0\.00325', text, re.M)
    assert re.search(
        r'^llm_requests_total\{.*cost_status="unpriced".*model="unknown-model".*status="ok".*\} 1\.0', text, re.M
    )
    assert re.search(r'^llm_tokens_total\{.*token_type="cache_read".*\} 200\.0', text, re.M)
    assert re.search(r'^llm_tokens_total\{.*token_type="input".*\} 800\.0', text, re.M)
    assert re.search(r'^llm_request_cost_usd_count\{.*model="gpt-4o".*\} 1\.0', text, re.M)
    assert re.search(
        r'^gen_ai_client_token_usage_bucket\{.*gen_ai_token_type="input".*le="1024.0".*\} 1\.0', text, re.M
    )
    assert re.search(r"^gen_ai_client_operation_duration_seconds_sum\{.*\} 1\.5", text, re.M)


def test_dimension_values_past_the_cap_fold_into_other(pricer: Pricer) -> None:
    rec = Recorder(("feature",), max_values_per_dimension=3)
    for n in range(10):
        record(rec, pricer, **{"llm.property.feature": f"f{n}"})
    snap = rec.snapshot()
    features = sorted({labels["feature"] for labels, _ in snap.cost_usd})
    assert features == ["f0", "f1", "f2", "other"]
    assert [(labels, n) for labels, n in snap.overflow] == [({"dimension": "feature"}, 7)]
    # money is never lost by folding
    assert rec.total_cost() == 10 * (1000 * Decimal("2.5") + 100 * Decimal(10)) / 10**6


def test_unbounded_ids_never_grow_series(pricer: Pricer) -> None:
    rec = Recorder(("feature",))
    for n in range(5000):
        record(rec, pricer, **{"session.id": f"s{n}", "user.id": f"u{n}", "gen_ai.request.model": f"model-{n % 700}"})
    # unknown model names are capped too (max_models=500 by default, the rest in "other")
    assert rec.series_count() <= 501
    assert "s4999" not in str(rec.snapshot()) and "u4999" not in str(rec.snapshot())


@pytest.mark.parametrize("bad", ["session_id", "user_id", "trace_id", "prompt", "model", "bad-label", "1x"])
def test_forbidden_or_invalid_dimensions_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(bad))):
        Recorder(("feature", bad))


def test_duplicate_dimension_refused() -> None:
    with pytest.raises(ConfigError, match="twice"):
        Recorder(("feature", "feature"))


def test_in_memory_reader_sees_points_with_otel_names(pipeline: Pipeline) -> None:
    span = pipeline.tracer.start_span(
        "chat",
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
        },
    )
    span.end()
    metrics = pipeline.metrics()
    assert set(metrics) >= {
        "llm.cost.usd",
        "llm.requests",
        "llm.tokens",
        "llm.request.cost_usd",
        "gen_ai.client.token.usage",
    }
    (cost,) = metrics["llm.cost.usd"]
    assert cost.value == pytest.approx(35e-6, rel=1e-12)
    # cumulative: a second collection still has the total
    assert pipeline.metrics()["llm.cost.usd"][0].value == cost.value


def test_catalog_info_gauge_names_the_catalog_version(pipeline: Pipeline) -> None:
    (point,) = pipeline.metrics(with_info=True)["llm.cost.catalog.info"]
    assert point.value == 1
    assert point.attributes == {"llm.cost.pricing.version": pipeline.processor.pricer.catalog.version}


def test_histogram_counts_and_money_over_many_calls(pricer: Pricer) -> None:
    # add() leaves the histograms' counts to snapshot(), which sums their buckets; money stays exact.
    rec = Recorder(("feature",))
    expected = Decimal(0)
    for n in range(1, 301):
        tokens = {"gen_ai.usage.input_tokens": 10 * n, "gen_ai.usage.output_tokens": n % 7}
        call = extract_call({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", **tokens})
        assert call is not None
        cost = pricer.price(call.provider, call.model, call.usage)
        assert cost.total_usd is not None
        expected += cost.total_usd
        rec.record(call, cost, duration_s=n / 100)
    snap = rec.snapshot()
    assert rec.total_cost() == expected == sum((v for _, v in snap.cost_usd), Decimal(0))
    (cost_hist,) = [h for _, h in snap.request_cost]
    assert cost_hist.count == sum(cost_hist.counts) == 300
    assert cost_hist.minimum == float(10 * Decimal("2.5") / 10**6 + Decimal(10) / 10**6)
    (duration,) = [h for _, h in snap.duration]
    assert (duration.count, duration.minimum, duration.maximum) == (300, 0.01, 3.0)
    token_counts = sorted(h.count for _, h in snap.token_usage)
    assert token_counts == [300, 300]
    # a second snapshot sees the same (counts are derived, not moved)
    assert [h.count for _, h in rec.snapshot().request_cost] == [300]


def test_each_session_is_counted_once_by_its_first_call_s_dimensions(pricer: Pricer) -> None:
    rec = Recorder(("feature", "session_name"))
    for n, (sid, feature) in enumerate([("s1", "chat"), ("s1", "search"), ("s2", "search"), ("", "chat")]):
        record(
            rec,
            pricer,
            **{"session.id": sid, "llm.session.name": "support", "llm.property.feature": feature},
            **({"gen_ai.request.model": "unknown-model"} if n == 2 else {}),  # unpriced calls count too
        )
    # s1 counted once, labelled by its first call; s2 once; a call without a session id: none
    assert sorted((labels["feature"], n) for labels, n in rec.snapshot().sessions) == [("chat", 1), ("search", 1)]
    assert all(set(labels) == {"feature", "session_name"} for labels, _ in rec.snapshot().sessions)
    text = scrape(rec)
    assert re.search(r'^llm_sessions_total\{feature="chat",.*session_name="support"\} 1\.0', text, re.M)
    assert not re.search(r"^llm_sessions_total\{.*(model|provider)=", text, re.M)


def test_session_ids_are_kept_in_a_bounded_window(pricer: Pricer) -> None:
    rec = Recorder(("feature",), max_sessions=1000)
    call = extract_call(
        {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    )
    assert call is not None
    route = rec.route(rec.label_key("openai", "gpt-4o", call))

    def add(session: object) -> None:
        rec.add(route, ("ok", "no_usage"), None, 0.0, None, None, "", None, session)

    distinct = 200_000
    for n in range(distinct):
        add(str(n))
        assert n % 10_000 or rec.sessions_remembered() <= 1000
    assert rec.sessions_remembered() <= 1000  # memory stays flat however many sessions there are
    ((_, counted),) = rec.snapshot().sessions
    assert counted == distinct  # each new id once
    add(str(distinct - 1))  # a recent id is remembered: not counted again
    add(distinct - 2)  # ids are compared as text, whatever their type
    ((_, same),) = rec.snapshot().sessions
    assert same == distinct
    add("0")  # forgotten long ago: counted again (the documented approximation)
    ((_, again),) = rec.snapshot().sessions
    assert again == distinct + 1
    with pytest.raises(ConfigError, match="max_sessions"):
        Recorder(max_sessions=0)


def test_cache_savings_and_write_premium_are_exact_sums_with_the_cost_labels(pricer: Pricer) -> None:
    rec = Recorder(("feature",))
    saved = premium = Decimal(0)
    for n in range(1, 51):
        attrs = {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 1000 * n,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cache_read.input_tokens": 13 * n,
            "gen_ai.usage.cache_creation.input_tokens": 5 * n if n % 2 else 0,
            "llm.property.feature": "docs",
        }
        call = extract_call(attrs)
        assert call is not None
        cost = pricer.price(call.provider, call.model, call.usage)
        assert cost.cache_savings_usd is not None and cost.cache_write_premium_usd is not None
        saved += cost.cache_savings_usd
        premium += cost.cache_write_premium_usd
        rec.record(call, cost)
    snap = rec.snapshot()
    ((cost_labels, _),) = snap.cost_usd
    assert snap.cache_savings == [(cost_labels, saved)] and snap.cache_write_premium == [(cost_labels, premium)]
    assert saved > premium > 0
    text = scrape(rec)
    value = re.search(r'^llm_cost_cache_savings_usd_total\{.*feature="docs".*\} (\S+)', text, re.M)
    assert value is not None and float(value.group(1)) == float(saved)
    assert re.search(r"^llm_cost_cache_write_premium_usd_total\{.*provider=\"anthropic\".*\}", text, re.M)
    # a call without cache tokens adds no savings series
    plain = Recorder()
    record(plain, pricer)
    assert plain.snapshot().cache_savings == [] and "llm_cost_cache_savings_usd_total" not in scrape(plain)
