"""The generated semconv module matches the registry, and no name is spelled outside it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_semconv", ROOT / "scripts" / "gen_semconv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_module_is_fresh() -> None:
    expected = _generator().render()
    actual = (ROOT / "otel_llmcost" / "semconv.py").read_text(encoding="utf-8")
    assert actual == expected, "otel_llmcost/semconv.py is stale: run python scripts/gen_semconv.py"


def test_registry_declares_design_contract() -> None:
    groups = yaml.safe_load((ROOT / "semconv" / "registry.yaml").read_text())["groups"]
    attrs = {a["id"] for g in groups if g["type"] == "attribute_group" for a in g["attributes"]}
    metrics = {g["metric_name"]: g for g in groups if g["type"] == "metric"}
    for name in (
        "llm.cost.total_usd", "llm.cost.input_usd", "llm.cost.output_usd", "llm.cost.cache_read_usd",
        "llm.cost.cache_write_usd", "llm.cost.request_usd", "llm.cost.status", "llm.cost.pricing.model",
        "llm.cost.pricing.provider", "llm.cost.pricing.version", "session.id", "llm.session.name",
        "llm.session.path", "user.id", "llm.property", "gen_ai.provider.name", "gen_ai.system",
        "gen_ai.request.model", "gen_ai.response.model", "gen_ai.operation.name", "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.reasoning.output_tokens", "server.address", "gen_ai.conversation.id", "enduser.id",
    ):  # fmt: skip
        assert name in attrs, name
    assert set(metrics) >= {
        "llm.cost.usd", "llm.requests", "llm.tokens", "llm.request.cost_usd",
        "gen_ai.client.token.usage", "gen_ai.client.operation.duration",
    }  # fmt: skip
    for group in metrics.values():
        for ref in group.get("attributes", []):
            assert ref["ref"] in attrs, f"{group['id']} refers to undeclared {ref['ref']}"


def test_no_attribute_or_metric_name_literals_outside_semconv() -> None:
    # Names are constants defined once: a literal "gen_ai.*" / "llm.cost.*" string elsewhere in the
    # package would drift from the registry.
    literal = re.compile(r"[\"'](gen_ai\.[a-z_.]+|llm\.(cost|session|property|usage)[a-z_.]*)[\"']")
    offenders = []
    for path in (ROOT / "otel_llmcost").rglob("*.py"):
        if path.name == "semconv.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if literal.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
