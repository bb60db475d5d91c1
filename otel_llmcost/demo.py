"""``otel-llmcost demo``: a realistic small workload priced end to end, on embedded defaults.

Sessions of several kinds, users, features and environments make LLM calls whose spans carry the
GenAI attributes an instrumentation writes (a few models, cache use, reasoning, a long-context
request, rate-limit errors, and a fine-tuned model the catalog cannot know). The spans go
through :func:`otel_llmcost.configure` and the real :class:`CostSpanProcessor`; the summary is
read back from the priced spans, and checked against the metrics recorder to the last digit.
No API key and no server are needed; ``--serve`` keeps ``/metrics`` up afterwards.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from . import semconv as sc
from ._configure import configure
from .context import properties, session, user
from .metrics import Snapshot

__all__ = ["run_demo"]


@dataclass(frozen=True)
class _Model:
    provider: str
    model: str
    cache: bool = False
    reasoning: bool = False
    operation: str = "chat"


# What each kind of session calls, with how many calls, a typical prompt size and its feature.
_MODELS = {
    "mini": _Model("openai", "gpt-4o-mini-2024-07-18"),
    "nano": _Model("openai", "gpt-4.1-nano-2025-04-14"),
    "reasoner": _Model("openai", "o4-mini-2025-04-16", reasoning=True),
    "sonnet": _Model("anthropic", "claude-sonnet-4-5-20250929", cache=True),
    "gemini-pro": _Model("gcp.gemini", "gemini-2.5-pro"),
    "gemini-flash": _Model("gcp.gemini", "gemini-2.5-flash", reasoning=True),
    "bedrock-haiku": _Model("aws.bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0"),
    "deepseek": _Model("deepseek", "deepseek-chat", cache=True),
    "embed": _Model("openai", "text-embedding-3-small", operation="embeddings"),
    "finetune": _Model("openai", "ft:gpt-4o-mini-2024-07-18:acme::demo42"),
}
_SESSION_KINDS: dict[str, dict[str, Any]] = {
    "support-chat": {
        "calls": (3, 7),
        "models": ["mini", "sonnet", "finetune"],
        "prompt": (800, 6000),
        "feature": "support",
    },
    "document-analysis": {
        "calls": (8, 14),
        "models": ["gemini-pro", "embed", "sonnet"],
        "prompt": (20000, 90000),
        "feature": "docs",
    },
    "quick-query": {
        "calls": (1, 1),
        "models": ["nano", "deepseek", "gemini-flash"],
        "prompt": (200, 1500),
        "feature": "search",
    },
    "code-review": {
        "calls": (2, 5),
        "models": ["reasoner", "bedrock-haiku"],
        "prompt": (3000, 25000),
        "feature": "code",
    },
}
_USERS = [f"user-{n:03d}" for n in range(40)]


def _llm_span(tracer: Tracer, rng: random.Random, m: _Model, prompt: int, start_ns: int) -> int:
    """Emit one LLM call span as an instrumentation would; return its end time."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_PROVIDER_NAME: m.provider,
        sc.GEN_AI_OPERATION_NAME: m.operation,
        sc.GEN_AI_REQUEST_MODEL: m.model.split("-2024")[0].split("-2025")[0] if "ft:" not in m.model else m.model,
        sc.GEN_AI_RESPONSE_MODEL: m.model,
    }
    duration_ns = int(rng.uniform(0.3, 6.0) * 1e9)
    span = tracer.start_span(
        f"{m.operation} {attrs[sc.GEN_AI_REQUEST_MODEL]}", kind=SpanKind.CLIENT, start_time=start_ns
    )
    if rng.random() < 0.03:  # a rate-limited call: no usage, an error
        span.set_attributes({**attrs, sc.ERROR_TYPE: "429"})
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
        span.end(end_time=start_ns + duration_ns // 10)
        return start_ns + duration_ns // 10
    inp = prompt + rng.randint(0, prompt // 3)
    if m.model == "gemini-2.5-pro" and rng.random() < 0.15:
        inp = rng.randint(210_000, 400_000)  # a whole contract in one prompt: long-context prices
    out = 0 if m.operation == "embeddings" else rng.randint(60, 1200)
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = inp
    attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = out
    if m.cache:
        read = rng.choice([0, inp // 2, int(inp * 0.9)])
        write = 0 if read else rng.choice([0, inp // 3])
        if read:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = read
        if write:
            attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = write
    if m.reasoning and out:
        extra = rng.randint(200, 4000)
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = out + extra
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = extra
    span.set_attributes(attrs)
    span.end(end_time=start_ns + duration_ns)
    return start_ns + duration_ns


# Every this many sessions, one call comes from a (made-up) buggy third-party instrumentation that
# reports a negative token count: it is not priced, and is counted in llm_cost_spans_skipped_total.
# Decided by the session number, not the random generator, so the rest of the workload is unchanged.
_BAD_DATA_EVERY = 20


def _bad_data_span(tracer: Tracer, start_ns: int) -> int:
    m = _MODELS["mini"]
    attrs: dict[str, Any] = {
        sc.GEN_AI_PROVIDER_NAME: m.provider,
        sc.GEN_AI_OPERATION_NAME: m.operation,
        sc.GEN_AI_REQUEST_MODEL: m.model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: -1,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 12,
    }
    span = tracer.start_span(f"{m.operation} {m.model}", kind=SpanKind.CLIENT, start_time=start_ns, attributes=attrs)
    span.end(end_time=start_ns + 400_000_000)
    return start_ns + 400_000_000


def _sessions(tracer: Tracer, rng: random.Random, count: int, start_ns: int) -> Iterator[None]:
    kinds = list(_SESSION_KINDS)
    now = start_ns
    for n in range(count):
        kind = rng.choice(kinds)
        spec = _SESSION_KINDS[kind]
        who = rng.choice(_USERS)
        env = "production" if rng.random() < 0.8 else "staging"
        tier = "pro" if int(who[-3:]) % 4 == 0 else "free"
        with (
            session(f"{kind}-{n:04d}", name=kind),
            user(who),
            properties(feature=spec["feature"], environment=env, user_tier=tier),
        ):
            root = tracer.start_span(f"session {kind}", start_time=now)
            t = now
            from opentelemetry import trace as trace_api

            with trace_api.use_span(root, end_on_exit=False):
                for _ in range(rng.randint(*spec["calls"])):
                    m = _MODELS[rng.choice(spec["models"])]
                    t = _llm_span(tracer, rng, m, rng.randint(*spec["prompt"]), t + int(rng.uniform(0.05, 2) * 1e9))
                if n % _BAD_DATA_EVERY == _BAD_DATA_EVERY - 1:
                    t = _bad_data_span(tracer, t)
            root.end(end_time=t)
        now = t + int(rng.uniform(1, 30) * 1e9)
        yield


def _d(value: Any) -> Decimal:
    # Cost attributes are floats made from exact Decimals; their shortest repr gives the Decimal back.
    return Decimal(repr(value))


def summarize(spans: list[ReadableSpan]) -> dict[str, Any]:
    """Build the demo's cost summary from priced spans."""
    by_session: dict[str, dict[str, Any]] = {}
    by_model: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    by_feature: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unpriced: dict[str, int] = defaultdict(int)
    statuses: dict[str, int] = defaultdict(int)
    total = Decimal(0)
    users = set()
    for span in spans:
        a = span.attributes or {}
        status = a.get(sc.LLM_COST_STATUS)
        if status is None:
            continue
        statuses[str(status)] += 1
        sid = str(a.get(sc.SESSION_ID))
        s = by_session.setdefault(sid, {"kind": a.get(sc.LLM_SESSION_NAME), "calls": 0, "cost": Decimal(0)})
        s["calls"] += 1
        users.add(a.get(sc.USER_ID))
        if status == sc.LLM_COST_STATUS_PRICED:
            cost = _d(a[sc.LLM_COST_TOTAL_USD])
            total += cost
            s["cost"] += cost
            key = f"{a[sc.LLM_COST_PRICING_PROVIDER]!s}/{a[sc.LLM_COST_PRICING_MODEL]!s}"
            by_model[key][0] += 1
            by_model[key][1] += cost
            by_feature[(str(a.get(f"{sc.LLM_PROPERTY}.feature")), str(a.get(f"{sc.LLM_PROPERTY}.environment")))] += cost
        elif status == sc.LLM_COST_STATUS_UNPRICED:
            unpriced[f"{a.get(sc.GEN_AI_PROVIDER_NAME)} {a.get(sc.GEN_AI_RESPONSE_MODEL)}"] += 1
    kinds: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), 0])
    for s in by_session.values():
        k = kinds[str(s["kind"])]
        k[0] += 1
        k[1] += s["cost"]
        k[2] += s["calls"]
    return {
        "total_usd": total,
        "calls": sum(statuses.values()),
        "sessions": len(by_session),
        "users": len(users),
        "statuses": dict(statuses),
        "session_types": {
            kind: {"sessions": n, "avg_cost_usd": cost / n, "avg_calls": Decimal(calls) / n}
            for kind, (n, cost, calls) in sorted(kinds.items(), key=lambda kv: -kv[1][1])
        },
        "models": {m: {"calls": n, "cost_usd": c} for m, (n, c) in sorted(by_model.items(), key=lambda kv: -kv[1][1])},
        "features": {f"{f} ({e})": c for (f, e), c in sorted(by_feature.items(), key=lambda kv: -kv[1])},
        "unpriced": dict(unpriced),
    }


def _money(value: Decimal, places: int = 6) -> str:
    return f"${value.quantize(Decimal(1).scaleb(-places)):,}"


def _metrics_figures(snap: Snapshot) -> dict[str, Any]:
    """What the recorder counted of sessions and caching (``llm_sessions_total``, ``llm_cost_cache_*``)."""
    saved = sum((v for _, v in snap.cache_savings), Decimal(0))
    premium = sum((v for _, v in snap.cache_write_premium), Decimal(0))
    return {
        "sessions": sum(n for _, n in snap.sessions),
        "cache_savings_usd": saved,
        "cache_write_premium_usd": premium,
        "net_cache_savings_usd": saved - premium,
    }


def _print(summary: dict[str, Any], metrics_total: Decimal, figures: dict[str, Any]) -> None:
    print(
        f"otel-llmcost demo: {summary['sessions']} sessions, {summary['calls']} LLM calls, "
        f"{summary['users']} users - total {_money(summary['total_usd'])}"
    )
    print("\nCost per session type          sessions    avg cost   avg calls")
    for kind, s in summary["session_types"].items():
        print(f"  {kind:<28} {s['sessions']:>8} {_money(s['avg_cost_usd'], 4):>11} {s['avg_calls']:>11.1f}")
    print("\nCost per model                                        calls        cost")
    for model, m in summary["models"].items():
        print(f"  {model:<50} {m['calls']:>6} {_money(m['cost_usd'], 4):>11}")
    print("\nCost per feature (environment)")
    for feature, cost in summary["features"].items():
        print(f"  {feature:<50} {_money(cost, 4):>18}")
    print("\nUnpriced calls (no catalog price: never counted as $0; add one in a pricing override)")
    for what, n in summary["unpriced"].items() or {"none": 0}.items():
        print(f"  {what:<50} {n:>6}")
    no_usage = summary["statuses"].get(sc.LLM_COST_STATUS_NO_USAGE, 0)
    invalid = summary["statuses"].get(sc.LLM_COST_STATUS_INVALID_USAGE, 0)
    print(f"\nCalls without usage (failed before billing): {no_usage}")
    print(f"Calls with invalid usage (a buggy instrumentation's negative count; not priced, counted): {invalid}")
    print(
        f"Prompt caching saved {_money(figures['cache_savings_usd'], 4)} on cache reads and cost"
        f" {_money(figures['cache_write_premium_usd'], 4)} of cache-write premium:"
        f" net {_money(figures['net_cache_savings_usd'], 4)}"
    )
    print(f"Sessions counted by the metrics (llm_sessions_total): {figures['sessions']}")
    same = "equals" if metrics_total == summary["total_usd"] else "DIFFERS FROM"
    print(f"Metrics total {_money(metrics_total, 12)} {same} the sum of span costs {_money(summary['total_usd'], 12)}")


def run_demo(
    *,
    serve: bool = False,
    port: int | None = None,
    sessions: int = 60,
    seed: int = 7,
    as_json: bool = False,
    every_s: float = 2.0,
) -> int:
    """Run the demo workload; returns the process exit code.

    Args:
        serve: keep ``/metrics`` up afterwards, adding a session every *every_s* seconds (so that
            rates and increases in Prometheus are not zero) until interrupted.
        port: the port of ``/metrics`` with *serve*.
        sessions: how many sessions the workload simulates.
        seed: the random seed of the workload.
        as_json: print the summary as JSON.
        every_s: seconds between two live sessions with *serve*.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    setup = configure(
        tracer_provider=provider,
        prometheus_port=(port if port is not None else None) if serve else 0,
        dimensions=("environment", "feature", "session_name", "user_tier"),
        span_processors=[SimpleSpanProcessor(exporter)],
        instrument=False,  # the demo's calls are simulated spans, not SDK calls
    )
    tracer = provider.get_tracer("otel_llmcost.demo")
    rng = random.Random(seed)
    start = time.time_ns() - 6 * 3600 * 10**9
    for _ in _sessions(tracer, rng, sessions, start):
        pass
    summary = summarize(list(exporter.get_finished_spans()))
    metrics_total = setup.recorder.total_cost()
    figures = _metrics_figures(setup.recorder.snapshot())
    if as_json:
        print(json.dumps({**summary, "metrics_total_usd": metrics_total, "metrics": figures}, default=str, indent=2))
    else:
        _print(summary, metrics_total, figures)
    if metrics_total != summary["total_usd"] or figures["sessions"] != summary["sessions"]:
        return 1
    if not serve:
        setup.shutdown()
        return 0
    if setup.prometheus_address is None:
        print(f"otel-llmcost: cannot serve /metrics: {setup.prometheus_error}")
        return 1
    host, bound = setup.prometheus_address
    print(f"\nServing http://{host}:{bound}/metrics - a new session every {every_s:g} s; Ctrl-C to stop.", flush=True)
    try:
        live = _sessions(tracer, rng, 10**9, time.time_ns())
        while True:
            next(live)
            exporter.clear()
            time.sleep(every_s)
    except KeyboardInterrupt:
        pass
    finally:
        setup.shutdown()
    return 0
