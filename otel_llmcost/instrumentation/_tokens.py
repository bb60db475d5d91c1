"""Counting tokens locally, for streams that end without a usage report (cost status ``estimated``).

OpenAI-family models are counted with tiktoken when an encoding can be loaded without network
access; every other model (and OpenAI's when no encoding is available offline) with the documented
estimate of one token per four characters of text, rounded up, the rule of thumb providers publish
for English text.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from ..pricing import Usage

__all__ = ["CHARS_PER_TOKEN", "count_tokens", "estimate_usage"]

CHARS_PER_TOKEN = 4
"""The fallback estimate: characters of text per token."""


@functools.lru_cache(maxsize=8)
def _encoding(model: str) -> Any:
    """Return a tiktoken encoding for an OpenAI-family *model* if one loads offline, else ``None``."""
    # tiktoken downloads its BPE files on first use; with no network that can hang, so until an
    # encoding is shipped for offline use every model takes the documented estimate.
    del model
    return None


def count_tokens(text: str, model: str | None = None) -> int:
    """Count the tokens of *text* for *model*: exact with an offline tiktoken encoding, else estimated."""
    if not text:
        return 0
    encoding = _encoding(model) if model else None
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_usage(model: str | None, prompt: Sequence[str], completion: str) -> Usage:
    """Estimate the usage of a call from its prompt texts and the completion text it streamed."""
    return Usage(
        input_tokens=sum(count_tokens(part, model) for part in prompt),
        output_tokens=count_tokens(completion, model),
    )
