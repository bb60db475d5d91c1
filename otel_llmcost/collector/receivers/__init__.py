"""OTLP receivers: gRPC and HTTP."""
