"""Exporters: OTLP forwarding (with an optional on-disk queue) and a file/debug exporter."""
