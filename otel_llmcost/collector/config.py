"""Collector configuration: shaped like the OpenTelemetry Collector's, validated at start.

Embedded defaults need no file: OTLP gRPC on 127.0.0.1:4317, OTLP/HTTP on 127.0.0.1:4318,
Prometheus on 127.0.0.1:9464, priced batches summarised by the ``debug`` exporter. A file passed
with ``--config`` (and command-line flags, which win over it) changes them::

    receivers:
      otlp:
        protocols:
          grpc: {endpoint: 127.0.0.1:4317, max_recv_msg_size_mib: 4, auth: {bearer_token: s3cret}}
          http: {endpoint: 127.0.0.1:4318, max_request_body_size_mib: 20, tls: {cert_file: c.pem, key_file: k.pem}}
    processors:
      llmcost: {dimensions: [environment, feature], max_dimension_values: 50, dedup_window: 250000,
                max_sessions: 100000, pricing_overrides: prices.yaml}
    exporters:
      otlp:
        endpoint: collector.internal:4317
        tls: {insecure: true}
        sending_queue: {queue_size: 1000, storage: /var/lib/otel-llmcost}
      otlphttp: {endpoint: https://otlp.example.com, headers: {x-api-key: ...}}
      prometheus: {endpoint: 127.0.0.1:9464}
      file: {path: priced-spans.jsonl}
      debug: {}
    extensions:
      health_check: {endpoint: 127.0.0.1:13133}
    service:
      pipelines:
        traces: {receivers: [otlp], processors: [llmcost], exporters: [otlp, prometheus]}

A bad file is refused at start with the key that is wrong (``exporters.otlp.endpont: unknown key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError

__all__ = ["CollectorConfig", "ExporterConfig", "ReceiverConfig", "load_config", "parse_endpoint"]

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_PROMETHEUS = "127.0.0.1:9464"
_MIB = 1024 * 1024


@dataclass
class ReceiverConfig:
    """One OTLP protocol's listener."""

    host: str
    port: int
    max_bytes: int
    tls: tuple[str, str] | None = None
    bearer_token: str | None = None


@dataclass
class ExporterConfig:
    """One exporter: kind (otlp, otlphttp, file, debug) and its settings."""

    kind: str
    endpoint: str | None = None
    insecure: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    queue_size: int = 1000
    storage: str | None = None
    path: str | None = None


@dataclass
class CollectorConfig:
    """The whole collector."""

    grpc: ReceiverConfig | None = field(
        default_factory=lambda: ReceiverConfig(*parse_endpoint(DEFAULT_GRPC, "grpc"), 4 * _MIB)
    )
    http: ReceiverConfig | None = field(
        default_factory=lambda: ReceiverConfig(*parse_endpoint(DEFAULT_HTTP, "http"), 20 * _MIB)
    )
    prometheus: tuple[str, int] | None = field(default_factory=lambda: parse_endpoint(DEFAULT_PROMETHEUS, "prometheus"))
    health: tuple[str, int] | None = None
    exporters: list[ExporterConfig] = field(default_factory=lambda: [ExporterConfig("debug")])
    dimensions: tuple[str, ...] = ("environment", "feature", "session_name")
    max_dimension_values: int = 50
    dedup_window: int = 250_000
    max_sessions: int = 100_000
    pricing_overrides: str | None = None


def parse_endpoint(value: Any, key: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:4317`` for IPv6).

    Raises:
        ConfigError: not a host and a port from 0 to 65535.
    """
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(key, value, "expected HOST:PORT")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(key, value, "the port is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(key, value, "the port must be from 0 to 65535")
    return host, port


class _Section:
    """A mapping of the config file whose keys are checked against the ones it may have."""

    def __init__(self, data: Any, path: str, allowed: set[str]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path or "config", data, "expected a mapping")
        for key in data:
            if key not in allowed:
                raise ConfigError(
                    f"{path}.{key}" if path else str(key),
                    data[key],
                    f"unknown key (known: {', '.join(sorted(allowed))})",
                )
        self.data = data
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def section(self, name: str, allowed: set[str]) -> _Section:
        return _Section(self.data.get(name), self.key(name), allowed)

    def integer(self, name: str, default: int, minimum: int = 1) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(self.key(name), value, f"expected a whole number >= {minimum}")
        return value


def _tls(section: _Section) -> tuple[str, str] | None:
    tls = section.section("tls", {"cert_file", "key_file", "insecure"})
    if tls.get("cert_file") is None and tls.get("key_file") is None:
        return None
    cert, key = tls.get("cert_file"), tls.get("key_file")
    for name, value in (("cert_file", cert), ("key_file", key)):
        if not isinstance(value, str) or not Path(value).is_file():
            raise ConfigError(tls.key(name), value, "expected the path of an existing PEM file")
    return cert, key


def _receiver(section: _Section, name: str, size_key: str, default_mib: int) -> ReceiverConfig:
    proto = section.section(name, {"endpoint", size_key, "tls", "auth"})
    host, port = parse_endpoint(
        proto.get("endpoint", DEFAULT_GRPC if name == "grpc" else DEFAULT_HTTP), proto.key("endpoint")
    )
    auth = proto.section("auth", {"bearer_token"})
    token = auth.get("bearer_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError(auth.key("bearer_token"), "***", "expected a non-empty string")
    return ReceiverConfig(host, port, proto.integer(size_key, default_mib) * _MIB, _tls(proto), token)


def _exporter(kind: str, section: _Section) -> ExporterConfig:
    base = kind.split("/", 1)[0]
    if base in ("otlp", "otlphttp"):
        exp = section.section(kind, {"endpoint", "tls", "headers", "sending_queue", "timeout"})
        endpoint = exp.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ConfigError(exp.key("endpoint"), endpoint, "an exporter needs an endpoint")
        if base == "otlp" and "://" not in endpoint:
            parse_endpoint(endpoint, exp.key("endpoint"))
        if base == "otlphttp" and not endpoint.startswith(("http://", "https://")):
            raise ConfigError(exp.key("endpoint"), endpoint, "expected an http:// or https:// URL")
        tls = exp.section("tls", {"insecure", "cert_file", "key_file"})
        headers = exp.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(exp.key("headers"), "***", "expected a mapping of header name -> string")
        queue = exp.section("sending_queue", {"queue_size", "storage", "enabled"})
        storage = queue.get("storage")
        if storage is not None and not isinstance(storage, str):
            raise ConfigError(queue.key("storage"), storage, "expected a directory path")
        return ExporterConfig(
            "otlp" if base == "otlp" else "otlphttp",
            endpoint=endpoint,
            insecure=bool(tls.get("insecure", True)),
            headers={str(k): v for k, v in headers.items()},
            queue_size=queue.integer("queue_size", 1000),
            storage=storage,
        )
    if base == "file":
        exp = section.section(kind, {"path"})
        path = exp.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(exp.key("path"), path, "the file exporter needs a path")
        return ExporterConfig("file", path=path)
    if base == "debug":
        section.section(kind, {"verbosity"})
        return ExporterConfig("debug")
    raise ConfigError(section.key(kind), kind, "unknown exporter (known: otlp, otlphttp, prometheus, file, debug)")


def load_config(path: str | Path | None = None, data: Mapping[str, Any] | None = None) -> CollectorConfig:
    """Read a collector config file (or a parsed mapping) over the embedded defaults.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or has a wrong key or value (named).
    """
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("--config", str(path), f"cannot read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError("--config", str(path), f"not valid YAML: {exc}") from None
    config = CollectorConfig()
    if not data:
        return config
    root = _Section(data, "", {"receivers", "processors", "exporters", "extensions", "service"})
    receivers = root.section("receivers", {"otlp"})
    exporters = root.section(
        "exporters", set(root.get("exporters") or {}) if isinstance(root.get("exporters"), Mapping) else set()
    )
    service = root.section("service", {"pipelines", "telemetry", "extensions"})
    pipelines = service.section("pipelines", {"traces"})
    traces = pipelines.section("traces", {"receivers", "processors", "exporters"})
    if receivers.get("otlp") is not None:
        protocols = receivers.section("otlp", {"protocols"}).section("protocols", {"grpc", "http"})
        config.grpc = _receiver(protocols, "grpc", "max_recv_msg_size_mib", 4) if "grpc" in protocols.data else None
        config.http = (
            _receiver(protocols, "http", "max_request_body_size_mib", 20) if "http" in protocols.data else None
        )
    processor = root.section("processors", {"llmcost", "batch"}).section(
        "llmcost", {"dimensions", "max_dimension_values", "dedup_window", "max_sessions", "pricing_overrides"}
    )
    dims = processor.get("dimensions", list(config.dimensions))
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise ConfigError(processor.key("dimensions"), dims, "expected a list of label names")
    config.dimensions = tuple(dims)
    config.max_dimension_values = processor.integer("max_dimension_values", config.max_dimension_values)
    config.dedup_window = processor.integer("dedup_window", config.dedup_window, minimum=0)
    config.max_sessions = processor.integer("max_sessions", config.max_sessions)
    overrides = processor.get("pricing_overrides")
    if overrides is not None and not isinstance(overrides, str):
        raise ConfigError(processor.key("pricing_overrides"), overrides, "expected a file path")
    config.pricing_overrides = overrides
    wanted = traces.get("exporters")
    names = list(exporters.data) if wanted is None else wanted
    if not isinstance(names, list):
        raise ConfigError(traces.key("exporters"), names, "expected a list of exporter names")
    config.exporters = []
    config.prometheus = None
    for name in names:
        if name not in exporters.data:
            raise ConfigError(traces.key("exporters"), name, "names an exporter that is not configured under exporters")
        if str(name).split("/", 1)[0] == "prometheus":
            prom = exporters.section(name, {"endpoint"})
            config.prometheus = parse_endpoint(prom.get("endpoint", DEFAULT_PROMETHEUS), prom.key("endpoint"))
        else:
            config.exporters.append(_exporter(str(name), exporters))
    health = root.section("extensions", {"health_check"})
    if health.get("health_check") is not None:
        check = health.section("health_check", {"endpoint"})
        config.health = parse_endpoint(check.get("endpoint", "127.0.0.1:13133"), check.key("endpoint"))
    return config
