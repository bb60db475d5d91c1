"""``pricing diff`` / ``pricing sync``: compare the catalog with genai-prices or a LiteLLM file, append accepted changes.

The LiteLLM cases run on ``tests/testdata/litellm_prices.json`` (a small fixture with planted
additions and disagreements against the test catalog) and never on a downloaded file. Sync always
edits a copy of the test catalog in ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from otel_llmcost.pricing import Catalog, Pricer, Usage, load_catalog
from otel_llmcost.pricing import _catalog_edit as edit
from otel_llmcost.pricing.compare import (
    CompareError,
    Disagreement,
    FieldDiff,
    PriceSet,
    Report,
    SyncError,
    diff,
    sync,
)

TESTDATA = Path(__file__).parent / "testdata"
LITELLM_FILE = TESTDATA / "litellm_prices.json"
AT = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
CHECKED = dt.date(2026, 6, 1)
NO_REVIEWS = TESTDATA / "no-such-disagreements.yaml"


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9


@pytest.fixture()
def catalog_copy(tmp_path: Path) -> Path:
    """A writable copy of the test catalog."""
    target = tmp_path / "pricing"
    shutil.copytree(TESTDATA / "catalog", target)
    return target


def _load(directory: Path) -> Catalog:
    return load_catalog(sorted(directory.glob("*.yaml")))


def _litellm_report(catalog: Catalog, reviewed: Path = NO_REVIEWS) -> Report:
    return diff(catalog, source=LITELLM_FILE, at=AT, reviewed=reviewed)


# --- diff against LiteLLM ------------------------------------------------------------------------


def test_litellm_diff_finds_planted_additions_and_disagreements(test_catalog: Catalog) -> None:
    """Guards the comparison: planted differences are found, agreeing models (float noise included) are not."""
    report = _litellm_report(test_catalog)
    assert report.source == "litellm"
    assert {a.key for a in report.additions} == {
        "openai/gpt-planted-1",
        "openai/text-embedding-planted",
        "openai/image-planted",
    }
    planted = next(a for a in report.additions if a.key == "openai/gpt-planted-1")
    assert dict(planted.current.base) == {
        "input": Decimal("1"),
        "output": Decimal("4"),
        "cache_read": Decimal("0.1"),
    }
    embedding = next(a for a in report.additions if a.key == "openai/text-embedding-planted")
    assert embedding.kind == "embeddings"
    by_key = {d.key: d for d in report.disagreements}
    # o3's 2.0000000000000003e-06 is float noise for 2.00 and agrees; its output price does not
    assert set(by_key) == {"openai/tiered-x", "openai/gpt-4o-2024-05-13", "openai/o3", "openai/gpt-5.4"}
    tiered = by_key["openai/tiered-x"]
    assert tiered.fields[0] == FieldDiff("input", None, Decimal("1.25"), Decimal("1.5"))
    assert not tiered.reviewed
    (o3,) = by_key["openai/o3"].fields
    assert (o3.field, o3.ours, o3.theirs) == ("output", Decimal(8), Decimal(6))
    tier = {(f.field, f.above_input_tokens): (f.ours, f.theirs) for f in by_key["openai/gpt-5.4"].fields}
    assert tier[("input", 272000)] == (Decimal(5), Decimal(6))
    # the anthropic key has the same tiers as the catalog, 1-hour writes above 200K included
    assert not any(d.provider == "anthropic" for d in report.disagreements)
    # a Azure data-zone key, a video model and a chat model without an output price are not additions
    assert report.skipped == {
        "entries of a kind the catalog does not price (video, OCR, search...)": 1,
        "models with only an input or only an output token price (writing 0 for the other would under-price)": 1,
        "region- or deployment-type keys (provider/region/model)": 1,
    }


def test_reviewed_disagreements_are_marked_not_hidden(test_catalog: Catalog, tmp_path: Path) -> None:
    """Guards the review record: a listed disagreement stays in the report, marked with its reason."""
    reviewed = tmp_path / "disagreements.yaml"
    reviewed.write_text(
        "- provider: openai\n  model: gpt-5.4\n  field: tiers[above 272000]\n  ours: input 5\n  theirs: input 6\n"
        "  other_source: litellm\n  reason: LiteLLM rounds the long-context price up.\n"
        "  settled_by: https://example.test/openai-pricing\n"
        "- provider: openai\n  model: tiered-x\n  field: input\n  ours: '1.25'\n  theirs: '1.5'\n"
        "  other_source: genai-prices\n  reason: only for the other data set\n  settled_by: https://example.test\n",
        encoding="utf-8",
    )
    report = _litellm_report(test_catalog, reviewed)
    by_key = {d.key: d for d in report.disagreements}
    assert by_key["openai/gpt-5.4"].reviewed
    assert by_key["openai/gpt-5.4"].reviews[0].reason == "LiteLLM rounds the long-context price up."
    assert not by_key["openai/tiered-x"].reviewed  # reviewed against genai-prices, not LiteLLM
    assert [d.key for d in report.unreviewed] == ["openai/gpt-4o-2024-05-13", "openai/o3", "openai/tiered-x"]
    text = report.to_text()
    assert "NEW DISAGREEMENTS" in text and "REVIEWED DISAGREEMENTS" in text
    assert "reviewed [tiers[above 272000]]: LiteLLM rounds the long-context price up." in text


def test_report_text_and_json(test_catalog: Catalog) -> None:
    """Guards the two outputs: a readable table and a JSON-ready dict with exact decimal strings."""
    report = _litellm_report(test_catalog)
    text = report.to_text()
    assert text.startswith(f"Catalog {test_catalog.version} vs LiteLLM litellm_prices.json")
    assert "8 catalog models found in both: 4 disagreements (4 new, 0 reviewed); 3 additions" in text
    assert "openai/tiered-x" in text and "input" in text and "1.25" in text and "1.5" in text
    assert "ADDITIONS" in text and "openai/image-planted" in text and "per_image 0.04" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["source"] == "litellm" and data["compared"] == 8
    addition = next(a for a in data["additions"] if a["key"] == "openai/gpt-planted-1")
    assert addition["current"] == {"input": "1", "output": "4", "cache_read": "0.1"}
    tiered = next(d for d in data["disagreements"] if d["key"] == "openai/tiered-x")
    assert tiered["fields"][0] == {
        "field": "input",
        "above_input_tokens": None,
        "ours": "1.25",
        "theirs": "1.5",
        "note": "",
    }
    assert tiered["reviewed"] is False


def test_provider_filter(test_catalog: Catalog) -> None:
    """Guards ``providers=``: only the named catalog providers are compared."""
    report = diff(test_catalog, source=LITELLM_FILE, at=AT, providers=["anthropic"], reviewed=NO_REVIEWS)
    assert report.compared == 1 and not report.disagreements and not report.additions


# --- diff against genai-prices -------------------------------------------------------------------


def test_genai_prices_diff_marks_a_known_reviewed_disagreement() -> None:
    """Guards the genai-prices reader: the shipped catalog's reviewed Sonnet 4 tier difference is found and marked."""
    pytest.importorskip("genai_prices")
    report = diff(load_catalog(), source="genai-prices", at=AT)
    assert report.source_label.startswith("genai-prices ")
    assert report.compared >= 250
    found = {d.key: d for d in report.disagreements}
    sonnet = found["anthropic/claude-sonnet-4-20250514"]
    assert sonnet.reviewed
    assert sonnet.reviews[0].field == "tiers[above 200000]"
    assert FieldDiff("input", 200000, Decimal(6), Decimal(3), "theirs: no tier") in sonnet.fields
    assert "reviewed [tiers[above 200000]]" in report.to_text()


def test_missing_genai_prices_says_how_to_install(monkeypatch: pytest.MonkeyPatch, test_catalog: Catalog) -> None:
    """Guards the optional dependency: without genai-prices the error names the pip command."""
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    with pytest.raises(CompareError, match="pip install genai-prices"):
        diff(test_catalog, source="genai-prices")


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "LiteLLM price file .* not found"),
        ('{"gpt-4o": {', "not valid JSON: .* line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"gpt-4o": {"input_cost_per_token": 1e-06}}', "no entry has a 'litellm_provider' field"),
    ],
)
def test_bad_litellm_file(tmp_path: Path, test_catalog: Catalog, content: str | None, needle: str) -> None:
    """Guards file errors: a missing, malformed or foreign file is refused with the path named."""
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CompareError, match=needle):
        diff(test_catalog, source=path)


def test_unknown_source(test_catalog: Catalog) -> None:
    """Guards the source argument: an unknown name says what is accepted."""
    with pytest.raises(CompareError, match=r"unknown price data source 'openrouter'.*'genai-prices'"):
        diff(test_catalog, source="openrouter")


def test_malformed_price_in_one_record_is_skipped(tmp_path: Path, test_catalog: Catalog) -> None:
    """Guards robustness: one bad record is counted, the rest are compared."""
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "gpt-x-bad": {"input_cost_per_token": "cheap", "litellm_provider": "openai", "mode": "chat"},
                "gpt-4o": {
                    "input_cost_per_token": 2.5e-06,
                    "output_cost_per_token": 1e-05,
                    "litellm_provider": "openai",
                },
            }
        ),
        encoding="utf-8",
    )
    report = diff(test_catalog, source=str(path), at=AT, reviewed=NO_REVIEWS)
    assert report.skipped == {"entries with a malformed price": 1}
    assert report.compared == 1


# --- sync ----------------------------------------------------------------------------------------


def test_sync_appends_a_dated_period_and_keeps_the_old_one(catalog_copy: Path) -> None:
    """Guards history: an accepted price change is a new period; calls before it keep the old price."""
    before_text = (catalog_copy / "openai.yaml").read_text(encoding="utf-8")
    report = _litellm_report(_load(catalog_copy))
    lines = sync(catalog_copy, report, accept=["openai/tiered-x"], checked=CHECKED)
    assert lines == ["openai.yaml: tiered-x: appended a price period from 2026-06-01: input 1.25 -> 1.5"]
    text = (catalog_copy / "openai.yaml").read_text(encoding="utf-8")
    assert text.startswith(before_text.split("  - id: tiered-x")[0])  # nothing before the entry changed
    assert "      - input: 1.25\n        output: 10.00\n        cache_read: 0.125\n" in text  # old period kept
    assert "      - from: 2026-06-01\n        input: 1.5\n" in text
    after = _load(catalog_copy)
    (entry,) = [e for e in after.entries if e.model_id == "tiered-x"]
    assert [p.starts for p in entry.periods] == [None, CHECKED]
    new = entry.periods[1].prices
    assert new.extras is not None and new.extras.batch == Decimal("0.5")  # fields diff does not compare are kept
    assert new.extras.regions == {"eu-west-1": Decimal("1.1")}
    pricer = Pricer(after)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    old = pricer.price("openai", "tiered-x", usage, at_ns=_ns(CHECKED - dt.timedelta(days=1)))
    now = pricer.price("openai", "tiered-x", usage, at_ns=_ns(CHECKED))
    assert (old.total_usd, now.total_usd) == (Decimal("1.25"), Decimal("1.5"))


def test_sync_handles_flow_mappings_and_period_lists(catalog_copy: Path) -> None:
    """Guards the text edits: ``prices: {...}`` becomes a list; a list of flow periods gets a block item."""
    report = _litellm_report(_load(catalog_copy))
    sync(catalog_copy, report, accept=["openai/gpt-4o-2024-05-13", "openai/o3", "openai/gpt-5.4"], checked=CHECKED)
    text = (catalog_copy / "openai.yaml").read_text(encoding="utf-8")
    assert "    prices:\n      - {input: 5.00, output: 15.00}\n      - from: 2026-06-01\n        input: 4\n" in text
    assert "      - {from: 2025-06-10, input: 2.00, output: 8.00, cache_read: 0.50}\n      - from: 2026-06-01\n" in text
    after = _load(catalog_copy)
    entries = {e.model_id: e for e in after.entries if e.provider == "openai"}
    assert entries["o3"].prices_at(_ns(CHECKED)).output * 10**6 == Decimal(6)
    assert entries["o3"].prices_at(_ns(dt.date(2026, 1, 1))).output * 10**6 == Decimal(8)
    assert entries["gpt-5.4"].prices_at(_ns(CHECKED)).tiers[0].input * 10**6 == Decimal(6)
    again = _litellm_report(after)
    assert not {"openai/gpt-4o-2024-05-13", "openai/o3", "openai/gpt-5.4"} & {d.key for d in again.disagreements}


def test_sync_appends_additions(catalog_copy: Path) -> None:
    """Guards additions: a new entry with the file's source, the date and a note; it prices calls."""
    report = _litellm_report(_load(catalog_copy))
    lines = sync(catalog_copy, report, accept="all-additions", checked=CHECKED)
    assert len(lines) == 3 and all(line.startswith("openai.yaml: added ") for line in lines)
    text = (catalog_copy / "openai.yaml").read_text(encoding="utf-8")
    assert (
        "  - id: gpt-planted-1\n    kind: chat\n    source: https://example.test/openai-pricing\n"
        '    checked: 2026-06-01\n    note: "added from LiteLLM litellm_prices.json (sha256 '
    ) in text
    after = _load(catalog_copy)
    pricer = Pricer(after)
    cost = pricer.price("openai", "gpt-planted-1", Usage(input_tokens=1_000_000, output_tokens=1_000_000))
    assert cost.total_usd == Decimal(5)
    embedding = pricer.price("openai", "text-embedding-planted", Usage(input_tokens=1_000_000))
    assert embedding.total_usd == Decimal("0.1")
    assert pricer.match("openai", "image-planted") is not None
    # once added, a second sync of the same report changes nothing
    assert sync(catalog_copy, report, accept=["openai/gpt-planted-1"], checked=CHECKED) == [
        "openai.yaml: gpt-planted-1: already in the catalog, not added"
    ]


def test_sync_twice_is_a_no_op(catalog_copy: Path) -> None:
    """Guards idempotence: an applied price change is not appended again."""
    report = _litellm_report(_load(catalog_copy))
    sync(catalog_copy, report, accept=["openai/tiered-x"], checked=CHECKED)
    text = (catalog_copy / "openai.yaml").read_text(encoding="utf-8")
    lines = sync(catalog_copy, report, accept=["openai/tiered-x"], checked=CHECKED)
    assert len(lines) == 1
    assert lines[0].startswith("openai.yaml: tiered-x: already priced as LiteLLM litellm_prices.json")
    assert lines[0].endswith("on 2026-06-01")
    assert (catalog_copy / "openai.yaml").read_text(encoding="utf-8") == text


def test_sync_upcoming_change_starts_on_its_own_date(catalog_copy: Path, test_catalog: Catalog) -> None:
    """Guards announced changes: a dated future price starts on its date, not on the review date."""
    theirs = PriceSet({"input": Decimal(3), "output": Decimal(12)}, starts=dt.date(2026, 9, 1))
    item = Disagreement(
        "openai",
        "reasoner-x",
        "genai-prices:reasoner-x",
        dt.date(2026, 9, 1),
        dt.date(2026, 9, 1),
        (FieldDiff("input", None, Decimal(1), Decimal(3)), FieldDiff("output", None, Decimal(4), Decimal(12))),
        theirs,
        upcoming=True,
    )
    report = Report("genai-prices", "genai-prices 0.0", AT, test_catalog.version, 1, (), (item,))
    (line,) = sync(catalog_copy, report, accept=["openai/reasoner-x@2026-09-01"], checked=CHECKED)
    assert "appended a price period from 2026-09-01" in line
    entry = next(e for e in _load(catalog_copy).entries if e.model_id == "reasoner-x")
    assert entry.prices_at(_ns(dt.date(2026, 8, 31))).input * 10**6 == Decimal(1)
    new = entry.prices_at(_ns(dt.date(2026, 9, 1)))
    assert (new.input * 10**6, new.reasoning * 10**6, new.request) == (Decimal(3), Decimal(8), Decimal("0.01"))


def test_sync_refuses_unknown_keys_and_out_of_order_periods(catalog_copy: Path) -> None:
    """Guards bad requests: an unknown key suggests close ones; a period before the last one is refused."""
    report = _litellm_report(_load(catalog_copy))
    with pytest.raises(SyncError, match=r"'openai/tiered-y' is not an addition.*did you mean openai/tiered-x"):
        sync(catalog_copy, report, accept=["openai/tiered-y"], checked=CHECKED)
    with pytest.raises(SyncError, match="last price period starts on 2025-06-10, not before 2025-01-01"):
        sync(catalog_copy, report, accept=["openai/o3"], checked=dt.date(2025, 1, 1))
    with pytest.raises(SyncError, match=r"catalog directory .* not found"):
        sync(catalog_copy / "missing", report, accept=["openai/o3"], checked=CHECKED)


def test_sync_rolls_back_when_the_result_does_not_load(catalog_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the files: a change that would break the catalog leaves every file as it was."""
    before = {p.name: p.read_text(encoding="utf-8") for p in catalog_copy.glob("*.yaml")}
    report = _litellm_report(_load(catalog_copy))
    broken = edit.append_entry
    monkeypatch.setattr(
        edit,
        "append_entry",
        lambda text, name, entry: broken(text, name, {**entry, "prices": {"input": -1, "output": 1}}),
    )
    with pytest.raises(SyncError, match=r"left unchanged.*'prices.input': expected a finite price >= 0"):
        sync(catalog_copy, report, accept=["openai/tiered-x", "openai/gpt-planted-1"], checked=CHECKED)
    assert {p.name: p.read_text(encoding="utf-8") for p in catalog_copy.glob("*.yaml")} == before
