"""An example application: a support assistant whose LLM calls are priced per session, user and feature.

Each ticket is one session (``support-chat``) of one user: a cheap model triages it, a knowledge-base
search embeds it, and the answer is written with the knowledge base as a long system prompt that
the provider caches after the first ticket. The calls go through the real ``openai`` SDK,
instrumented by ``otel_llmcost.configure()``; the span exporter below shows that every exported
span carries its cost (``llm.cost.total_usd``), and ``/metrics`` counts it.

It runs offline: without ``OPENAI_API_KEY`` the client talks to a small stand-in on 127.0.0.1 that
answers in OpenAI's wire format with token usage (cache hits included). With a key, it calls the
real API (and spends a few cents).

    python examples/sessions_app.py                 # 4 tickets, then the cost of each
    python examples/sessions_app.py --forever       # a ticket every 3 s; /metrics on :9464
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_llmcost
from otel_llmcost import semconv as sc

KNOWLEDGE_BASE = "You are Acme's support assistant. Answer from this knowledge base.\n" + "\n".join(
    f"Article {n}: how to fix problem {n} with the Acme widget, step by step." for n in range(400)
)
TICKETS = [
    ("My widget does not start after the update.", "production"),
    ("How do I export my invoices?", "production"),
    ("The staging widget shows error 42.", "staging"),
    ("Can I change the language of the widget?", "production"),
]


class TicketCosts(SpanExporter):
    """A span exporter that adds up ``llm.cost.total_usd`` per session: what your backend receives."""

    def __init__(self) -> None:
        self.by_session: dict[str, Decimal] = defaultdict(Decimal)
        self.calls: dict[str, int] = defaultdict(int)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            attrs = span.attributes or {}
            session_id = attrs.get(sc.SESSION_ID)
            if session_id is not None and sc.LLM_COST_STATUS in attrs:
                self.calls[str(session_id)] += 1
                cost = attrs.get(sc.LLM_COST_TOTAL_USD)
                if cost is not None:
                    self.by_session[str(session_id)] += Decimal(repr(cost))
        return SpanExportResult.SUCCESS


def handle_ticket(client: Any, ticket_id: str, user_id: str, text: str, environment: str) -> str:
    """Answer one ticket: triage, knowledge-base search, answer; all in one session."""
    with (
        otel_llmcost.session(ticket_id, name="support-chat"),
        otel_llmcost.user(user_id),
        otel_llmcost.properties(feature="support", environment=environment),
    ):
        with otel_llmcost.session(ticket_id, name="support-chat", path="/triage"):
            triage = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"Classify this ticket: {text}"}]
            )
        with (
            otel_llmcost.session(ticket_id, name="support-chat", path="/search"),
            otel_llmcost.properties(feature="kb-search"),
        ):
            client.embeddings.create(model="text-embedding-3-small", input=text)
        with otel_llmcost.session(ticket_id, name="support-chat", path="/answer"):
            answer = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": KNOWLEDGE_BASE},
                    {"role": "user", "content": f"{triage.choices[0].message.content}: {text}"},
                ],
            )
    return str(answer.choices[0].message.content)


# --- the offline stand-in for the OpenAI API --------------------------------------------------


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Answers chat completions and embeddings like the API, with usage; caches long prompt prefixes."""

    seen_prefixes: ClassVar[set[str]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        tokens = max(1, len(json.dumps(body.get("messages", body.get("input", "")))) // 4)
        if self.path.endswith("/embeddings"):
            reply: dict[str, Any] = {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.0] * 8}],
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        else:
            first = body["messages"][0]["content"]
            with self.lock:  # the provider caches a prompt prefix of 1024+ tokens once it has seen it
                cached = (len(first) // 4 // 128) * 128 if first in self.seen_prefixes and len(first) > 4096 else 0
                self.seen_prefixes.add(first)
            out = random.randint(20, 200)
            reply = {
                "id": f"chatcmpl-{random.getrandbits(64):x}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Widget setup"},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": tokens,
                    "completion_tokens": out,
                    "total_tokens": tokens + out,
                    "prompt_tokens_details": {"cached_tokens": cached},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def _client() -> Any:
    from openai import OpenAI

    if os.environ.get("OPENAI_API_KEY"):
        return OpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return OpenAI(api_key="offline", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")


def main(argv: Sequence[str] | None = None) -> int:
    """Handle tickets and print what each cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=len(TICKETS), help="how many tickets (default 4)")
    parser.add_argument("--forever", action="store_true", help="keep handling a ticket every 3 s (Ctrl-C stops)")
    args = parser.parse_args(argv)

    costs = TicketCosts()
    # configure() reads OTEL_LLMCOST_* (dimensions, Prometheus port) and OTEL_EXPORTER_OTLP_*;
    # a one-off run does not need /metrics unless OTEL_LLMCOST_PROMETHEUS_PORT asks for it.
    port = None if args.forever or os.environ.get("OTEL_LLMCOST_PROMETHEUS_PORT") else 0
    setup = otel_llmcost.configure(prometheus_port=port, span_processors=[SimpleSpanProcessor(costs)])
    client = _client()
    n = 0
    try:
        while args.forever or n < args.tickets:
            text, environment = TICKETS[n % len(TICKETS)]
            handle_ticket(client, f"ticket-{n:05d}", f"user-{n % 7:03d}", text, environment)
            n += 1
            if args.forever:
                time.sleep(3)
    except KeyboardInterrupt:
        pass
    for ticket, cost in costs.by_session.items():
        print(f"{ticket}: {costs.calls[ticket]} calls, ${cost}")
    print(f"total ${setup.recorder.total_cost()} (the metrics' sum; the spans say ${sum(costs.by_session.values())})")
    setup.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
