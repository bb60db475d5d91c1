"""The command line: price (text and JSON), unknown models, bad input, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from otel_llmcost import default_pricer
from otel_llmcost.cli import main
from otel_llmcost.pricing import Usage


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_price_json_matches_the_pricer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "price", "openai", "gpt-4o-2024-08-06", "--input-tokens", "12000", "--output-tokens", "800",
        "--cache-read-tokens", "4000", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    expected = default_pricer().price("openai", "gpt-4o-2024-08-06", Usage(12000, 800, 4000))
    assert doc["status"] == "priced"
    assert Decimal(doc["total_usd"]) == expected.total_usd
    assert doc["matched_model"] == "gpt-4o" and doc["matched_provider"] == "openai"
    assert set(doc["breakdown"]) == {"input_usd", "output_usd", "cache_read_usd", "cache_write_usd", "request_usd"}
    assert sum(Decimal(v) for v in doc["breakdown"].values()) == Decimal(doc["total_usd"])


def test_price_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "price",
        "aws.bedrock",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "10",
    )
    assert code == 0
    assert "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0" in out
    assert "total" in out and "source: https://" in out


def test_price_at_uses_price_history(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["price", "openai", "o3", "--input-tokens", "1000000", "--output-tokens", "0", "--json"]
    _, before, _ = run(capsys, *args, "--at", "2025-05-01T12:00:00Z")
    _, after, _ = run(capsys, *args, "--at", "2025-07-01")
    assert Decimal(json.loads(before)["total_usd"]) > Decimal(json.loads(after)["total_usd"])


def test_unknown_model_exits_3_naming_it_and_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "price", "openai", "gpt-4o-mni", "--input-tokens", "1", "--output-tokens", "1")
    assert code == 3
    assert "gpt-4o-mni" in err and "gpt-4o-mini" in err
    assert out == ""


def test_unknown_model_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "price", "nowhere", "x", "--input-tokens", "1", "--output-tokens", "1", "--json")
    assert code == 3
    assert json.loads(out) == {
        "status": "unpriced",
        "error": "unknown model 'x' for provider 'nowhere'",
        "total_usd": None,
    }


def test_inconsistent_usage_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "price", "openai", "gpt-4o", "--input-tokens", "10", "--output-tokens", "1", "--cache-read-tokens", "20"
    )
    assert code == 2 and "cache reads (20)" in err


@pytest.mark.parametrize("bad", ["-5", "ten", "1.5"])
def test_bad_token_arguments(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["price", "openai", "gpt-4o", "--input-tokens", bad, "--output-tokens", "1"])
    assert exc.value.code == 2
    assert "--input-tokens" in capsys.readouterr().err


def test_console_script_exit_code() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "otel_llmcost",
            "price",
            "openai",
            "no-such-model",
            "--input-tokens",
            "1",
            "--output-tokens",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 3, proc.stderr
    assert "no-such-model" in proc.stderr


def test_demo_runs_and_reconciles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--sessions", "25", "--json")
    assert code == 0
    doc = json.loads(out)
    assert Decimal(doc["total_usd"]) == Decimal(doc["metrics_total_usd"]) > 0
    assert doc["sessions"] == 25
    assert set(doc["session_types"]) <= {"support-chat", "document-analysis", "quick-query", "code-review"}
    assert len(doc["models"]) >= 4
    assert doc["statuses"]["priced"] > 0
    # the fine-tuned model is unpriced (never $0), and rate-limited calls have no usage
    assert doc["unpriced"] == {"openai ft:gpt-4o-mini-2024-07-18:acme::demo42": doc["statuses"]["unpriced"]}
    assert doc["statuses"]["unpriced"] > 0 and doc["statuses"]["no_usage"] > 0
    # the metrics count each session once, and what caching saved (the demo's Claude calls read and write it)
    metrics = doc["metrics"]
    assert metrics["sessions"] == doc["sessions"] == 25
    saved, premium = Decimal(metrics["cache_savings_usd"]), Decimal(metrics["cache_write_premium_usd"])
    assert saved > 0 and premium >= 0 and Decimal(metrics["net_cache_savings_usd"]) == saved - premium


def test_pricing_list_json_one_object_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pricing", "list", "--provider", "aws.bedrock", "--json")
    assert code == 0
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) > 20 and {d["provider"] for d in docs} == {"bedrock"}
    for doc in docs:
        assert set(doc) >= {"provider", "model", "prices", "source", "checked"}
        assert doc["source"].startswith("https://") and Decimal(doc["prices"]["input"]) >= 0


def test_pricing_show_history_and_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pricing", "show", "o3-2025-04-16", "--provider", "openai", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["model"] == "o3" and len(doc["history"]) >= 2
    assert [p["from"] for p in doc["history"]][1] == "2025-06-10"
    code, out, _ = run(capsys, "pricing", "show", "claude-sonnet-4-5-20250929", "--provider", "anthropic")
    assert code == 0 and "above 200,000 input tokens" in out


def test_pricing_show_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pricing", "show", "gpt-4o-mni")
    assert code == 3 and "gpt-4o-mini" in err


def test_pricing_validate_shipped_catalog_and_overrides(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    code, _, err = run(capsys, "pricing", "validate")
    assert code == 0 and ": ok" in err
    bad = tmp_path / "overrides.yaml"
    bad.write_text("models:\n  - {provider: openai, id: m, prices: {input: -2, output: 1}}\n")
    code, _, err = run(capsys, "pricing", "validate", "--overrides", str(bad))
    assert code == 1 and "overrides.yaml: model 'm': field 'prices.input'" in err


def test_pricing_validate_sanity_rules() -> None:
    from otel_llmcost._pricing_cli import check
    from otel_llmcost.pricing.catalog import Catalog, parse_file

    text = (
        "provider: openai\nsource: https://x.test\nchecked: 2026-01-01\nmodels:\n"
        "  - {id: a, prices: {input: 1, output: 0.5}}\n"
        "  - {id: b, prices: {input: 1, output: 2, cache_read: 3}}\n"
        "  - {id: c, kind: embeddings, prices: {input: 1, output: 0}}\n"
        "  - {id: d, checked: 2099-01-01, prices: {input: 1, output: 2}}\n"
    )
    catalog = Catalog(tuple(parse_file(text, "t.yaml")[2]), "v")
    problems = check(catalog)
    assert any("openai/a" in p and "output priced below input" in p for p in problems)
    assert any("openai/b" in p and "cache read price above the input price" in p for p in problems)
    assert any("openai/d" in p and "in the future" in p for p in problems)
    assert not any("openai/c" in p for p in problems)


def test_pricing_diff_and_sync_from_a_litellm_file(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    import shutil

    from otel_llmcost.pricing import catalog_dir, load_catalog

    litellm = str(Path(__file__).parent / "testdata" / "litellm_prices.json")
    code, out, _ = run(capsys, "pricing", "diff", "--source", litellm, "--json")
    doc = json.loads(out)
    assert code in (0, 1) and "openai/gpt-planted-1" in [a["key"] for a in doc["additions"]]
    work = tmp_path / "pricing"
    shutil.copytree(catalog_dir(), work)
    code, out, _ = run(
        capsys, "pricing", "sync", "--source", litellm, "--accept", "openai/gpt-planted-1",
        "--checked", "2026-11-25", "--catalog-dir", str(work),
    )  # fmt: skip
    assert code == 0 and "gpt-planted-1" in out
    added = [e for e in load_catalog(sorted(work.glob("*.yaml"))).models("openai") if e.model_id == "gpt-planted-1"]
    assert len(added) == 1 and added[0].checked.isoformat() == "2026-11-25"
    code, _, err = run(
        capsys, "pricing", "sync", "--source", litellm, "--accept", "openai/nope", "--catalog-dir", str(work)
    )
    assert code == 2 and "openai/nope" in err


def test_pricing_diff_unknown_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pricing", "diff", "--source", "/no/such/prices.json")
    assert code == 2 and "prices.json" in err


def test_demo_counts_the_bad_data_spans(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--sessions", "40", "--json")
    assert code == 0
    # one call with a negative token count every 20 sessions: not priced, and not a made-up $0
    assert json.loads(out)["statuses"]["invalid_usage"] == 40 // 20


def test_demo_every_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--serve", "--every", "0")
    assert code == 2 and "--every" in err


def test_dashboard_writes_the_generated_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from otel_llmcost.dashboard import build_dashboard, recorded_dimensions, render_dashboard

    out = tmp_path / "d.json"
    code, stdout, _ = run(capsys, "dashboard", "--dimensions", "environment, feature", "--out", str(out))
    assert code == 0 and stdout.strip() == str(out)
    text = out.read_text()
    assert text == render_dashboard(build_dashboard(("environment", "feature")))
    assert recorded_dimensions(json.loads(text)) == ("environment", "feature")
    code, stdout, _ = run(capsys, "dashboard", "--dimensions", "environment,feature")
    assert code == 0 and stdout == text


def test_dashboard_check_passes_on_the_committed_file_and_names_a_stale_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    committed = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "otel-llmcost.json"
    code, _, err = run(capsys, "dashboard", "--check", str(committed))
    assert code == 0, err
    stale = tmp_path / "stale.json"
    doc = json.loads(committed.read_text())
    doc["panels"][1]["targets"][0]["expr"] = "sum(llm_cost_usd_total)"  # a hand edit
    stale.write_text(json.dumps(doc, indent=2) + "\n")
    code, _, err = run(capsys, "dashboard", "--check", str(stale))
    assert code == 1
    assert f"{stale} is stale" in err and "otel-llmcost dashboard --dimensions environment,feature,session_name" in err
    code, _, err = run(capsys, "dashboard", "--check", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err


def test_dashboard_refuses_a_bad_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "dashboard", "--dimensions", "environment,user_id")
    assert code == 2 and out == ""
    assert "user_id" in err
