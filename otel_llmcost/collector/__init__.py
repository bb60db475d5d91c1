"""Collector mode: an OTLP hop that prices spans from apps in any language (``otel-llmcost collector``)."""
