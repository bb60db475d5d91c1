"""Configuration: every environment variable declared once, with its meaning and default.

Precedence everywhere: an explicit argument, then the environment variable, then the default.
A bad value raises :class:`ConfigError` naming the key and the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "EnvVar",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_LLMCOST_BUDGETS",
    "OTEL_LLMCOST_BUDGETS_REDIS_URL",
    "OTEL_LLMCOST_CONTENT_MAX_LENGTH",
    "OTEL_LLMCOST_DIMENSIONS",
    "OTEL_LLMCOST_GUARD_FAILURE_POLICY",
    "OTEL_LLMCOST_INSTRUMENT",
    "OTEL_LLMCOST_MAX_DIMENSION_VALUES",
    "OTEL_LLMCOST_MAX_SESSIONS",
    "OTEL_LLMCOST_PRICING_OVERRIDES",
    "OTEL_LLMCOST_PROMETHEUS_HOST",
    "OTEL_LLMCOST_PROMETHEUS_PORT",
    "OTEL_LLMCOST_STREAM_INCLUDE_USAGE",
    "env_bool",
    "env_int",
    "env_list",
    "env_str",
]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the value."""

    def __init__(self, key: str, value: object, problem: str) -> None:
        """Create the error.

        Args:
            key: the setting (argument or environment variable name).
            value: the offending value.
            problem: what is wrong, in words.
        """
        super().__init__(f"{key}={value!r}: {problem}")
        self.key = key
        self.value = value


@dataclass(frozen=True)
class EnvVar:
    """An environment variable otel-llmcost reads."""

    name: str
    default: str
    meaning: str


OTEL_LLMCOST_PROMETHEUS_PORT = EnvVar(
    "OTEL_LLMCOST_PROMETHEUS_PORT",
    "9464",
    "Port of the Prometheus /metrics endpoint that configure() starts; 0 disables it.",
)
OTEL_LLMCOST_PROMETHEUS_HOST = EnvVar(
    "OTEL_LLMCOST_PROMETHEUS_HOST", "127.0.0.1", "Address the Prometheus endpoint listens on (loopback by default)."
)
OTEL_LLMCOST_DIMENSIONS = EnvVar(
    "OTEL_LLMCOST_DIMENSIONS",
    "environment,feature,session_name",
    "Comma-separated allow-list of extra metric labels, each read from the custom property of that name "
    "(session_name: the session's name). Session and user ids are refused.",
)
OTEL_LLMCOST_MAX_DIMENSION_VALUES = EnvVar(
    "OTEL_LLMCOST_MAX_DIMENSION_VALUES",
    "50",
    "Distinct values kept per dimension; further values are folded into 'other' and counted.",
)

OTEL_LLMCOST_MAX_SESSIONS = EnvVar(
    "OTEL_LLMCOST_MAX_SESSIONS",
    "100000",
    "Recent session ids remembered to count each session once in llm_sessions_total (about 80 bytes "
    "each); a session whose id was forgotten and comes back is counted again.",
)

OTEL_LLMCOST_INSTRUMENT = EnvVar(
    "OTEL_LLMCOST_INSTRUMENT",
    "all",
    "Which installed SDKs configure() instruments: 'all', 'none', or a comma-separated list of "
    "openai, anthropic, google.genai, botocore.",
)
OTEL_LLMCOST_STREAM_INCLUDE_USAGE = EnvVar(
    "OTEL_LLMCOST_STREAM_INCLUDE_USAGE",
    "false",
    "true: ask OpenAI-compatible APIs to report usage on streams (adds stream_options.include_usage "
    "to streaming requests that do not set stream_options). Changes the request; off by default.",
)

OTEL_LLMCOST_PRICING_OVERRIDES = EnvVar(
    "OTEL_LLMCOST_PRICING_OVERRIDES",
    "",
    "Path of a pricing overrides file (custom models, discounts, deployment names) applied over the "
    "built-in catalog; see otel_llmcost/pricing/overrides.py.",
)

# Spend guards (otel_llmcost/budgets): configure() builds the guard from the budgets file.
OTEL_LLMCOST_BUDGETS = EnvVar(
    "OTEL_LLMCOST_BUDGETS",
    "",
    "Path of a budgets file; configure() enforces its budgets that have an action (raise or log) and "
    "its rate limits before every instrumented call, and exports the guard's metrics. Unset: no guard.",
)
OTEL_LLMCOST_BUDGETS_REDIS_URL = EnvVar(
    "OTEL_LLMCOST_BUDGETS_REDIS_URL",
    "",
    "Redis URL (redis://host:6379/0) where the guard keeps spend shared by every process using it; "
    "unset: each process keeps its own spend in memory.",
)
OTEL_LLMCOST_GUARD_FAILURE_POLICY = EnvVar(
    "OTEL_LLMCOST_GUARD_FAILURE_POLICY",
    "open",
    "What the guard does when Redis is unreachable: open (calls go ahead unguarded) or closed (calls "
    "under a raise limit are refused); both are counted in llm_budget_guard_errors_total{policy}.",
)

# Message content capture (instrumentation/_content.py): OpenTelemetry's own variable, then our cap.
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = EnvVar(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "false",
    "Opt in to prompts and completions on spans (gen_ai.input.messages, gen_ai.output.messages, "
    "gen_ai.system_instructions, gen_ai.tool.definitions): true or SPAN_ONLY / SPAN_AND_EVENT; "
    "false, NO_CONTENT or EVENT_ONLY (no events are emitted) capture nothing. Off by default.",
)
OTEL_LLMCOST_CONTENT_MAX_LENGTH = EnvVar(
    "OTEL_LLMCOST_CONTENT_MAX_LENGTH",
    "32768",
    "Most characters of one captured content attribute (at least 256); longer content is truncated "
    "with a marker, keeping the JSON valid.",
)

ALL_ENV_VARS = (
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
    OTEL_LLMCOST_CONTENT_MAX_LENGTH,
    OTEL_LLMCOST_PROMETHEUS_PORT,
    OTEL_LLMCOST_PROMETHEUS_HOST,
    OTEL_LLMCOST_DIMENSIONS,
    OTEL_LLMCOST_MAX_DIMENSION_VALUES,
    OTEL_LLMCOST_MAX_SESSIONS,
    OTEL_LLMCOST_INSTRUMENT,
    OTEL_LLMCOST_STREAM_INCLUDE_USAGE,
    OTEL_LLMCOST_PRICING_OVERRIDES,
    OTEL_LLMCOST_BUDGETS,
    OTEL_LLMCOST_BUDGETS_REDIS_URL,
    OTEL_LLMCOST_GUARD_FAILURE_POLICY,
)


def env_str(var: EnvVar, environ: Mapping[str, str] | None = None) -> str:
    """Return the variable's value, or its default when unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(var.name, "").strip() or var.default


def env_int(
    var: EnvVar, *, minimum: int = 0, maximum: int | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Return the variable as a whole number within bounds.

    Raises:
        ConfigError: the value is not a whole number or out of bounds.
    """
    raw = env_str(var, environ)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(var.name, raw, "expected a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(
            var.name, raw, f"expected a number from {minimum} to {maximum if maximum is not None else 'any'}"
        )
    return value


def env_bool(var: EnvVar, environ: Mapping[str, str] | None = None) -> bool:
    """Return the variable as a boolean (true/false, 1/0, yes/no, on/off).

    Raises:
        ConfigError: the value is none of those.
    """
    raw = env_str(var, environ).lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigError(var.name, raw, "expected true or false")


def env_list(var: EnvVar, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Return the variable as a tuple of non-empty, stripped comma-separated items."""
    return tuple(item.strip() for item in env_str(var, environ).split(",") if item.strip())
