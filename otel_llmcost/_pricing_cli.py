"""``otel-llmcost pricing ...``: list, show and validate the price catalog (and overrides)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from .pricing import Catalog, CatalogError, ModelEntry, Pricer, load_catalog
from .pricing.catalog import ANY_MODEL
from .pricing.overrides import load_overrides

__all__ = ["add_parser", "run"]

EXIT_PROBLEMS = 1
EXIT_UNKNOWN = 3
# Kinds whose output is legitimately priced below input (or not at all).
_NO_OUTPUT_KINDS = {"embeddings", "rerank", "moderation", "audio", "image"}


def add_parser(sub: Any) -> None:
    """Add the ``pricing`` command and its subcommands to *sub* (an argparse subparsers object)."""
    pricing = sub.add_parser("pricing", help="list, show and validate the price catalog")
    psub = pricing.add_subparsers(dest="pricing_command", required=True)
    for name, text in (("list", "list catalog models"), ("show", "show one model's prices and history")):
        cmd = psub.add_parser(name, help=text)
        if name == "show":
            cmd.add_argument("model", help="model id as an API reports it (any form the matcher accepts)")
        cmd.add_argument("--provider", help="only this provider (any provider name, e.g. aws.bedrock)")
        cmd.add_argument("--overrides", help="a pricing overrides file to apply")
        cmd.add_argument("--json", action="store_true", help="print JSON")
    validate = psub.add_parser("validate", help="check the catalog (and an overrides file) for mistakes")
    validate.add_argument("--overrides", help="also validate this pricing overrides file")
    for name, text in (
        ("diff", "compare the catalog with public price data: additions and disagreements, for review"),
        ("sync", "accept reviewed items from a diff: append new models or dated price periods"),
    ):
        cmd = psub.add_parser(name, help=text)
        cmd.add_argument(
            "--source",
            default="genai-prices",
            help="genai-prices (the installed package) or the path of a LiteLLM price JSON",
        )
        cmd.add_argument("--provider", action="append", help="only these providers (repeatable)")
        cmd.add_argument("--at", help="compare the prices in force at this ISO date-time (default now)")
        if name == "diff":
            cmd.add_argument("--json", action="store_true", help="print JSON")
        else:
            cmd.add_argument("--accept", action="append", required=True, help="an item key from diff, or all-additions")
            cmd.add_argument("--checked", help="the date the accepted prices were checked (default today)")
            cmd.add_argument("--catalog-dir", help="the catalog directory to write (default the one in use)")


def _pricer(path: str | None) -> Pricer:
    return Pricer(overrides=path) if path else Pricer()


def _entry_json(entry: ModelEntry) -> dict[str, Any]:
    current = entry.periods[-1]
    out: dict[str, Any] = {
        "provider": entry.provider,
        "model": entry.model_id,
        "aliases": list(entry.aliases),
        "kind": entry.kind,
        "prices": current.prices.per_million(),
        "source": entry.source,
        "checked": entry.checked.isoformat(),
    }
    if len(entry.periods) > 1:
        out["history"] = [
            {"from": p.starts.isoformat() if p.starts else None, **p.prices.per_million()} for p in entry.periods
        ]
    if entry.note:
        out["note"] = entry.note
    return out


def _selected(catalog: Catalog, provider: str | None, pricer: Pricer) -> list[ModelEntry]:
    if provider is None:
        return catalog.models()
    pid = pricer.matcher.resolve_provider(provider, None, None)
    if pid is None:
        raise CatalogError(f"unknown provider {provider!r} (known: {', '.join(catalog.providers())})")
    return catalog.models(pid)


def _list(args: argparse.Namespace) -> int:
    pricer = _pricer(args.overrides)
    entries = _selected(pricer.catalog, args.provider, pricer)
    if args.json:
        for entry in entries:
            print(json.dumps(_entry_json(entry)))
        return 0
    print(f"{'provider':<11} {'model':<52} {'input':>9} {'output':>9} {'cache rd':>9}  checked")
    for entry in entries:
        p = entry.periods[-1].prices.per_million()
        print(
            f"{entry.provider:<11} {entry.model_id[:52]:<52} {p['input']:>9} {p['output']:>9} "
            f"{p['cache_read']:>9}  {entry.checked}"
        )
    print(f"{len(entries)} models; USD per million tokens; catalog {pricer.catalog.version}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    pricer = _pricer(args.overrides)
    providers = [args.provider] if args.provider else pricer.catalog.providers()
    found = [m for m in (pricer.match(p, args.model) for p in providers) if m is not None]
    if not args.provider:  # a local server's "any model" price says nothing about a named model
        found = [m for m in found if m.entry.model_id != ANY_MODEL]
    if not found:
        close = pricer.matcher.close_matches(args.provider, args.model)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        print(f"otel-llmcost: unknown model {args.model!r}{hint}", file=sys.stderr)
        return EXIT_UNKNOWN
    docs = [_entry_json(m.entry) for m in found]
    if args.json:
        print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2))
        return 0
    for doc in docs:
        print(f"{doc['provider']}/{doc['model']} ({doc['kind']})  aliases: {', '.join(doc['aliases']) or '-'}")
        print(f"  source: {doc['source']} (checked {doc['checked']})")
        for period in doc.get("history", [{"from": None, **doc["prices"]}]):
            since = f"from {period['from']}" if period.get("from") else "since first listed"
            fields = ", ".join(f"{k} {v}" for k, v in period.items() if k not in ("from", "tiers"))
            print(f"  {since}: {fields}")
            for tier in period.get("tiers", []):
                above = f"{tier['above_input_tokens']:,}"
                print(f"    above {above} input tokens: input {tier['input']}, output {tier['output']}")
        if doc.get("note"):
            print(f"  note: {doc['note']}")
    return 0


def check(catalog: Catalog, today: dt.date | None = None) -> list[str]:
    """Return the sanity problems of a loaded catalog (the loader has already checked the schema)."""
    today = today or dt.date.today()
    problems = []
    for entry in catalog.models():
        name = f"{entry.file}: {entry.provider}/{entry.model_id}"
        if entry.checked > today:
            problems.append(f"{name}: checked date {entry.checked} is in the future")
        for period in entry.periods:
            p = period.prices
            when = f" (from {period.starts})" if period.starts else ""
            for label, inp, cache in [
                ("", p.input, p.cache_read),
                *((f" tier>{t.above_input_tokens}", t.input, t.cache_read) for t in p.tiers),
            ]:
                if inp and cache > inp:
                    problems.append(f"{name}{when}{label}: cache read price above the input price")
            if p.output < p.input and entry.kind not in _NO_OUTPUT_KINDS and not entry.note:
                problems.append(f"{name}{when}: output priced below input and no note says why")
    return problems


def _validate(args: argparse.Namespace) -> int:
    try:
        catalog = load_catalog()
        if args.overrides:
            overrides = load_overrides(args.overrides)
            catalog = Catalog(catalog.entries, catalog.version, catalog.display_names, overrides=overrides.entries)
    except CatalogError as exc:
        print(f"otel-llmcost: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    problems = check(catalog)
    for problem in problems:
        print(problem)
    models = len(catalog.models())
    verdict = f"{len(problems)} problem(s)" if problems else "ok"
    print(
        f"{models} models, {len(catalog.providers())} providers, catalog {catalog.version}: {verdict}", file=sys.stderr
    )
    return EXIT_PROBLEMS if problems else 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .pricing import catalog_dir
    from .pricing.compare import ALL_ADDITIONS, CompareError, diff, sync

    at = dt.datetime.fromisoformat(args.at.replace("Z", "+00:00")) if args.at else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    try:
        report = diff(load_catalog(), source=args.source, at=at, providers=args.provider)
        if args.pricing_command == "diff":
            print(json.dumps(report.to_json(), indent=2) if args.json else report.to_text())
            return EXIT_PROBLEMS if report.unreviewed else 0
        accept = ALL_ADDITIONS if args.accept == [ALL_ADDITIONS] else args.accept
        checked = dt.date.fromisoformat(args.checked) if args.checked else dt.date.today()
        directory = Path(args.catalog_dir) if args.catalog_dir else catalog_dir()
        for line in sync(directory, report, accept=accept, checked=checked):
            print(line)
        return 0
    except CompareError as exc:
        print(f"otel-llmcost: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Run a ``pricing`` subcommand; returns the exit code."""
    try:
        if args.pricing_command == "list":
            return _list(args)
        if args.pricing_command == "show":
            return _show(args)
        if args.pricing_command in ("diff", "sync"):
            return _compare(args)
        return _validate(args)
    except CatalogError as exc:
        print(f"otel-llmcost: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except ValueError as exc:  # a bad --at or --checked date
        print(f"otel-llmcost: {exc}", file=sys.stderr)
        return 2
