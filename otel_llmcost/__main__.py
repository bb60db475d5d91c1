"""``python -m otel_llmcost`` runs the command line."""

from .cli import main

raise SystemExit(main())
