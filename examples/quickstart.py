"""The few lines to add to an existing application (pip install otel-llmcost).

Call ``configure()`` once at start-up, before the app makes LLM calls; wrap a unit of work in
``session`` / ``user`` / ``properties`` to group its calls. Every call the installed provider SDKs
make (openai, anthropic, google-genai, boto3 Bedrock) is then priced on its span and counted on
http://127.0.0.1:9464/metrics. Runs as is: with OPENAI_API_KEY set it makes one real call.

    python examples/quickstart.py
"""

from __future__ import annotations

import os

import otel_llmcost

# --- paste from here ------------------------------------------------------------------------
setup = otel_llmcost.configure()  # tracer provider + cost processor + /metrics (OTEL_LLMCOST_* env vars)


def handle_request(ticket_id: str, user_id: str) -> None:
    """One unit of work of your app: its LLM calls are grouped by session, user and properties."""
    with (
        otel_llmcost.session(ticket_id, name="support-chat"),
        otel_llmcost.user(user_id),
        otel_llmcost.properties(feature="support", environment=os.environ.get("APP_ENV", "development")),
    ):
        call_the_model()  # your existing code, unchanged


# --- to here --------------------------------------------------------------------------------


def call_the_model() -> None:
    """Stands for the app's own LLM calls: one real call when an API key is set."""
    if not os.environ.get("OPENAI_API_KEY"):
        print("no OPENAI_API_KEY: no call made (see examples/sessions_app.py for an offline run)")
        return
    from openai import OpenAI

    reply = OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello in five words."}]
    )
    print(reply.choices[0].message.content)


if __name__ == "__main__":
    handle_request("ticket-8812", "user-42")
    where = setup.prometheus_address or setup.prometheus_error or "off"
    print(f"metrics: {where}; spent so far ${setup.recorder.total_cost()}")
    setup.shutdown()
