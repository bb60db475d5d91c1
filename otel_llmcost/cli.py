"""The ``otel-llmcost`` command line.

``price`` imports only the pricing core, so a cold ``otel-llmcost price ...`` stays fast; the
OpenTelemetry SDK loads only for ``demo``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from decimal import Decimal

from . import _pricing_cli
from .version import __version__

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNPRICED = 3


def _tokens(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"token counts cannot be negative, got {value}")
    return value


def _when(text: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or date-time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def _usd(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-llmcost", description="What your LLM calls cost, in OpenTelemetry.")
    parser.add_argument("--version", action="version", version=f"otel-llmcost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    price = sub.add_parser("price", help="price one call from its token counts")
    price.add_argument("provider", help="provider name, e.g. openai, anthropic, aws.bedrock, gcp.vertex_ai")
    price.add_argument("model", help="model name as the API reports it, e.g. gpt-4o-2024-08-06")
    price.add_argument(
        "--input-tokens", type=_tokens, required=True, help="all input tokens, cache reads and writes included"
    )
    price.add_argument("--output-tokens", type=_tokens, required=True, help="all output tokens, reasoning included")
    price.add_argument("--cache-read-tokens", type=_tokens, default=0, help="input tokens read from the cache")
    price.add_argument("--cache-write-tokens", type=_tokens, default=0, help="input tokens written to the cache")
    price.add_argument(
        "--cache-write-1h-tokens", type=_tokens, default=0, help="of the cache writes, those with a 1 h TTL"
    )
    price.add_argument(
        "--reasoning-tokens", type=_tokens, default=0, help="of the output tokens, those spent reasoning"
    )
    price.add_argument("--server-address", default=None, help="endpoint host, e.g. myres.openai.azure.com")
    price.add_argument("--at", type=_when, default=None, help="when the call happened (ISO 8601); default now")
    price.add_argument("--json", action="store_true", help="print a JSON object")

    _pricing_cli.add_parser(sub)

    collector = sub.add_parser("collector", help="run an OTLP hop that prices spans from apps in any language")
    collector.add_argument("--config", help="a config file shaped like the OpenTelemetry Collector's")
    collector.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC listener (default 127.0.0.1:4317)")
    collector.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP listener (default 127.0.0.1:4318)")
    collector.add_argument("--prometheus", metavar="HOST:PORT", help="/metrics endpoint (default 127.0.0.1:9464)")
    collector.add_argument("--health", metavar="HOST:PORT", help="health endpoint (GET /health)")
    collector.add_argument(
        "--forward-to", metavar="URL", help="forward priced spans: HOST:PORT (OTLP/gRPC) or http(s)://... (OTLP/HTTP)"
    )
    collector.add_argument("--queue-dir", metavar="DIR", help="an on-disk queue for forwarding that survives restarts")

    rules = sub.add_parser(
        "rules", help="write Prometheus rules, promtool tests and an Alertmanager example from a budgets file"
    )
    rules.add_argument("--budgets", required=True, metavar="FILE", help="the budgets file (see examples/budgets.yaml)")
    rules.add_argument(
        "--out", required=True, metavar="DIR", help="where prometheus-rules.yml, its tests and alertmanager.yml go"
    )
    rules.add_argument("--alertmanager", metavar="FILE", help="write the Alertmanager example here instead of DIR")
    rules.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files in DIR differ from what it would write",
    )

    dashboard = sub.add_parser("dashboard", help="write the Grafana dashboard generated from the metric definitions")
    dashboard.add_argument("--out", metavar="FILE", help="where to write the JSON (default: standard output)")
    dashboard.add_argument(
        "--dimensions",
        metavar="A,B",
        help="the dimensions the application records (default OTEL_LLMCOST_DIMENSIONS or its default)",
    )
    dashboard.add_argument(
        "--check",
        metavar="FILE",
        help="write nothing; exit 1 if FILE differs from the generated dashboard (for the dimensions it records)",
    )

    demo = sub.add_parser("demo", help="run a realistic priced workload on embedded defaults and print a cost summary")
    demo.add_argument("--serve", action="store_true", help="keep /metrics up after the workload (Ctrl-C to stop)")
    demo.add_argument(
        "--port",
        type=int,
        default=None,
        help="port of /metrics with --serve (default OTEL_LLMCOST_PROMETHEUS_PORT or 9464)",
    )
    demo.add_argument("--sessions", type=int, default=60, help="how many sessions to simulate (default 60)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the workload (default 7)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--every",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --serve: seconds between live sessions (default 2)",
    )
    return parser


def _price(args: argparse.Namespace) -> int:
    from .pricing import STATUS_PRICED, CatalogError, Usage, default_pricer

    usage = Usage(
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        cache_read_tokens=args.cache_read_tokens,
        cache_write_tokens=args.cache_write_tokens,
        cache_write_1h_tokens=args.cache_write_1h_tokens,
        reasoning_tokens=args.reasoning_tokens,
    )
    try:
        pricer = default_pricer()
    except CatalogError as exc:
        print(f"otel-llmcost: the price catalog is invalid: {exc}", file=sys.stderr)
        return 1
    cost = pricer.price(args.provider, args.model, usage, at_ns=args.at, server_address=args.server_address)
    if cost.status != STATUS_PRICED:
        if cost.reason_code == "unknown_model":
            close = pricer.matcher.close_matches(args.provider, args.model)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            message = f"unknown model {args.model!r} for provider {args.provider!r}{hint}"
            code = EXIT_UNPRICED
        else:
            message = cost.reason or cost.status
            code = EXIT_USAGE
        if args.json:
            print(json.dumps({"status": cost.status, "error": message, "total_usd": None}))
        print(f"otel-llmcost: {message}", file=sys.stderr)
        return code
    total = cost.total_usd if cost.total_usd is not None else Decimal(0)  # always set when priced
    breakdown = {name: _usd(value) for name, value in cost.breakdown().items()}
    if args.json:
        print(
            json.dumps(
                {
                    "total_usd": _usd(total),
                    "breakdown": breakdown,
                    "matched_model": cost.model,
                    "matched_provider": cost.provider,
                    "status": cost.status,
                    "catalog_version": cost.catalog_version,
                    "long_context_tier_above": cost.tier_above,
                    "usage": {name: getattr(usage, name) for name in Usage.__slots__},
                },
                indent=2,
            )
        )
        return EXIT_OK
    entry = pricer.match(args.provider, args.model, args.server_address)
    print(f"{args.provider} {args.model} -> {cost.provider}/{cost.model} (catalog {cost.catalog_version})")
    if entry is not None:
        print(f"  source: {entry.entry.source} (checked {entry.entry.checked})")
    if cost.tier_above is not None:
        print(f"  long-context price: input above {cost.tier_above:,} tokens")
    for name, value in breakdown.items():
        print(f"  {name.removesuffix('_usd'):<12} ${value}")
    print(f"  {'total':<12} ${_usd(total)}")
    return EXIT_OK


def _rules(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from .budgets import BudgetsError, generate, load_budgets
    from .budgets.rules import ALERTMANAGER_FILE

    out = Path(args.out)
    alertmanager = Path(args.alertmanager) if args.alertmanager else out / ALERTMANAGER_FILE
    try:
        budgets = load_budgets(args.budgets)
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                stale = []
                for path in generate(budgets, tmp):
                    target = alertmanager if path.name == ALERTMANAGER_FILE else out / path.name
                    if not target.is_file() or target.read_bytes() != path.read_bytes():
                        stale.append(str(target))
            if stale:
                command = f"otel-llmcost rules --budgets {args.budgets} --out {args.out}"
                if args.alertmanager:
                    command += f" --alertmanager {args.alertmanager}"
                print(
                    f"otel-llmcost rules: stale or missing: {', '.join(stale)}; regenerate with `{command}`",
                    file=sys.stderr,
                )
                return 1
            return EXIT_OK
        paths = generate(budgets, out)
        if args.alertmanager:
            alertmanager.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out / ALERTMANAGER_FILE), alertmanager)
            paths = [alertmanager if p.name == ALERTMANAGER_FILE else p for p in paths]
    except BudgetsError as exc:
        print(f"otel-llmcost rules: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"otel-llmcost rules: cannot write {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import ConfigError
    from .dashboard import DashboardError, build_dashboard, default_dimensions, recorded_dimensions, render_dashboard

    dims = None
    if args.dimensions is not None:
        dims = tuple(d.strip() for d in args.dimensions.split(",") if d.strip())
    try:
        if args.check:
            path = Path(args.check)
            try:
                committed = path.read_text(encoding="utf-8")
                recorded = recorded_dimensions(json.loads(committed))
            except OSError as exc:
                print(f"otel-llmcost dashboard: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            except ValueError as exc:
                print(f"otel-llmcost dashboard: {path} is not JSON: {exc}", file=sys.stderr)
                return 1
            if dims is None:
                dims = recorded if recorded is not None else default_dimensions()
            if render_dashboard(build_dashboard(dims)) != committed:
                print(
                    f"otel-llmcost dashboard: {path} is stale: it differs from the dashboard generated from the"
                    f" metric definitions (dimensions {','.join(dims)}); regenerate with"
                    f" `otel-llmcost dashboard --dimensions {','.join(dims)} --out {path}`",
                    file=sys.stderr,
                )
                return 1
            return EXIT_OK
        text = render_dashboard(build_dashboard(dims))
    except (DashboardError, ConfigError) as exc:
        print(f"otel-llmcost dashboard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"otel-llmcost dashboard: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(args.out)
    return EXIT_OK


def _collector(args: argparse.Namespace) -> int:
    from .collector.config import ExporterConfig, load_config, parse_endpoint
    from .collector.server import run
    from .config import ConfigError
    from .pricing import CatalogError

    try:
        config = load_config(args.config)
        if args.otlp_grpc and config.grpc is not None:
            config.grpc.host, config.grpc.port = parse_endpoint(args.otlp_grpc, "--otlp-grpc")
        if args.otlp_http and config.http is not None:
            config.http.host, config.http.port = parse_endpoint(args.otlp_http, "--otlp-http")
        if args.prometheus:
            config.prometheus = parse_endpoint(args.prometheus, "--prometheus")
        if args.health:
            config.health = parse_endpoint(args.health, "--health")
        if args.forward_to:
            url = args.forward_to
            http = url.startswith(("http://", "https://"))
            if not http:
                parse_endpoint(url, "--forward-to")
            forward = ExporterConfig("otlphttp" if http else "otlp", endpoint=url, storage=args.queue_dir)
            config.exporters = [e for e in config.exporters if e.kind != "debug"] + [forward]
        elif args.queue_dir:
            raise ConfigError("--queue-dir", args.queue_dir, "needs --forward-to (the queue holds batches to forward)")
        return run(config)
    except (ConfigError, CatalogError) as exc:
        print(f"otel-llmcost collector: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"otel-llmcost collector: cannot start: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:  # `otel-llmcost pricing list | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "price":
        return _price(args)
    if args.command == "pricing":
        return _pricing_cli.run(args)
    if args.command == "collector":
        return _collector(args)
    if args.command == "rules":
        return _rules(args)
    if args.command == "dashboard":
        return _dashboard(args)
    from .demo import run_demo

    if args.every <= 0:
        print("otel-llmcost demo: --every must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    return run_demo(
        serve=args.serve,
        port=args.port,
        sessions=args.sessions,
        seed=args.seed,
        as_json=args.json,
        every_s=args.every,
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
