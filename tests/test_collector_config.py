"""Collector configuration: embedded defaults, the Collector-shaped file, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_llmcost.collector.config import CollectorConfig, load_config, parse_endpoint
from otel_llmcost.config import ConfigError

FULL = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:14317, max_recv_msg_size_mib: 8, auth: {bearer_token: s3cret}}
      http: {endpoint: "0.0.0.0:14318"}
processors:
  llmcost: {dimensions: [environment], max_dimension_values: 10, dedup_window: 5000, max_sessions: 77}
exporters:
  otlp: {endpoint: "collector.internal:4317", sending_queue: {queue_size: 50, storage: /tmp/q}}
  otlphttp/backup: {endpoint: "https://otlp.example.com", headers: {x-api-key: abc}}
  prometheus: {endpoint: "127.0.0.1:19464"}
  file: {path: /tmp/spans.jsonl}
extensions:
  health_check: {endpoint: "127.0.0.1:13133"}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [llmcost], exporters: [otlp, otlphttp/backup, prometheus, file]}
"""


def test_embedded_defaults() -> None:
    config = load_config()
    assert isinstance(config, CollectorConfig)
    assert config.grpc is not None and (config.grpc.host, config.grpc.port) == ("127.0.0.1", 4317)
    assert config.http is not None and (config.http.host, config.http.port) == ("127.0.0.1", 4318)
    assert config.grpc.max_bytes == 4 * 1024 * 1024 and config.http.max_bytes == 20 * 1024 * 1024
    assert config.prometheus == ("127.0.0.1", 9464)
    assert [e.kind for e in config.exporters] == ["debug"]


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(FULL)
    config = load_config(path)
    assert config.grpc is not None and config.grpc.port == 14317 and config.grpc.bearer_token == "s3cret"
    assert config.grpc.max_bytes == 8 * 1024 * 1024
    assert config.http is not None and config.http.host == "0.0.0.0"
    assert config.dimensions == ("environment",) and config.max_dimension_values == 10 and config.dedup_window == 5000
    assert config.max_sessions == 77
    assert [(e.kind, e.endpoint) for e in config.exporters[:2]] == [
        ("otlp", "collector.internal:4317"),
        ("otlphttp", "https://otlp.example.com"),
    ]
    assert config.exporters[0].queue_size == 50 and config.exporters[0].storage == "/tmp/q"
    assert config.exporters[1].headers == {"x-api-key": "abc"}
    assert config.exporters[2].kind == "file" and config.prometheus == ("127.0.0.1", 19464)
    assert config.health == ("127.0.0.1", 13133)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("receivers: {otlp: {protocols: {grpc: {endpont: 1.2.3.4:1}}}}", "receivers.otlp.protocols.grpc.endpont"),
        ("receivers: {otlp: {protocols: {grpc: {endpoint: nope}}}}", "receivers.otlp.protocols.grpc.endpoint"),
        ("receivers: {otlp: {protocols: {http: {endpoint: 'h:99999'}}}}", "receivers.otlp.protocols.http.endpoint"),
        ("exporters: {otlp: {}}", "exporters.otlp.endpoint"),
        ("exporters: {otlphttp: {endpoint: 'ftp://x'}}", "exporters.otlphttp.endpoint"),
        ("exporters: {kafka: {brokers: [x]}}", "exporters.kafka"),
        (
            "{exporters: {debug: {}}, service: {pipelines: {traces: {exporters: [otlp]}}}}",
            "service.pipelines.traces.exporters",
        ),
        ("processors: {llmcost: {max_dimension_values: 0}}", "processors.llmcost.max_dimension_values"),
        ("processors: {llmcost: {max_sessions: 0}}", "processors.llmcost.max_sessions"),
        ("processors: {llmcost: {dimension: [a]}}", "processors.llmcost.dimension"),
        (
            "receivers: {otlp: {protocols: {grpc: {tls: {cert_file: /no/such.pem, key_file: /no/k.pem}}}}}",
            "tls.cert_file",
        ),
        ("servce: {}", "servce"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:4317", ("127.0.0.1", 4317)), ("[::1]:0", ("::1", 0)), (":80", ("127.0.0.1", 80))],
)
def test_parse_endpoint(value: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(value, "x") == expected
