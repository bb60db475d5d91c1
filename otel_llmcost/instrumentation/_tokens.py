"""Counting tokens locally, for streams that end without a usage report (cost status ``estimated``).

OpenAI-family models are counted exactly with tiktoken, from BPE files shipped in this package
(``otel_llmcost/_data/tokenizers``: OpenAI's ``o200k_base`` and ``cl100k_base``, byte-identical to
the files tiktoken downloads, checked against the same SHA-256). They are loaded from disk only:
never ``tiktoken.get_encoding``, which fetches the files from the internet on first use and can
hang where there is no network. Every other model takes the documented estimate of one token per
four characters of text, rounded up, the rule of thumb providers publish for English text.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..pricing import Usage

__all__ = ["CHARS_PER_TOKEN", "count_tokens", "encoding_for", "encoding_name_for", "estimate_usage"]

CHARS_PER_TOKEN = 4
"""The fallback estimate: characters of text per token."""

TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "_data" / "tokenizers"

# The chat format's framing, as OpenAI documents it for its tiktoken-counted models: every message
# costs 3 tokens besides its role and content, and the reply is primed with 3 more.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING = 3

# From tiktoken_ext/openai_public.py (tiktoken 0.14, MIT, (c) OpenAI): the split pattern and the
# special tokens of each encoding, with the SHA-256 of its BPE file. Kept here because tiktoken's
# own constructors download the file.
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = "|".join(
    [
        r"""'(?i:[sdmt]|ll|ve|re)""",
        r"""[^\r\n\p{L}\p{N}]?+\p{L}++""",
        r"""\p{N}{1,3}+""",
        r""" ?[^\s\p{L}\p{N}]++[\r\n]*+""",
        r"""\s++$""",
        r"""\s*[\r\n]""",
        r"""\s+(?!\S)""",
        r"""\s""",
    ]
)
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    # name: (split pattern, SHA-256 of the uncompressed BPE file, special tokens)
    "o200k_base": (
        _O200K_PATTERN,
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": (
        _CL100K_PATTERN,
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}

# Model families, newest first; a name matches when it is the family or continues with '-', '.',
# ':' or '@' (a snapshot, size or deployment suffix). Checked before tiktoken's own table, which
# only knows the models released before the installed tiktoken was.
_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"gpt-[5-9](?:\.\d+)?|gpt-4\.[1-9]|gpt-4o|chatgpt-4o|o\d|gpt-oss|gpt-realtime|gpt-audio|codex-mini", "o200k_base"),
    (r"gpt-4|gpt-3\.5|gpt-35|text-embedding-3-(?:small|large)|text-embedding-ada-002", "cl100k_base"),
)
_FAMILY_RE = tuple((re.compile(rf"(?:{pattern})(?:$|[-.:@])"), name) for pattern, name in _FAMILIES)
# Prefixes that say nothing about the tokenizer: a router's provider ("openai/gpt-4o"), a fine-tune.
_WRAPPER = re.compile(r"^(?:openai/|azure/|ft:)+")

_load_lock = threading.Lock()


def encoding_name_for(model: str | None) -> str | None:
    """Return the shipped tiktoken encoding (``o200k_base``, ``cl100k_base``) of *model*, or ``None``."""
    if not model:
        return None
    name = _WRAPPER.sub("", model.strip().lower())
    for pattern, encoding in _FAMILY_RE:
        if pattern.match(name):
            return encoding
    try:  # tiktoken's table is a plain dictionary: no download happens here
        from tiktoken.model import encoding_name_for_model

        known = encoding_name_for_model(name)
    except Exception:  # noqa: BLE001 - tiktoken missing or the model unknown to it
        return None
    # o200k_harmony adds only special tokens to o200k_base: plain text encodes the same
    known = "o200k_base" if known == "o200k_harmony" else known
    return known if known in _ENCODINGS else None


def _read_ranks(name: str, expected_sha256: str) -> dict[bytes, int]:
    data = gzip.decompress((TOKENIZER_DIR / f"{name}.tiktoken.gz").read_bytes())
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"{name}.tiktoken does not match the SHA-256 of OpenAI's published file")
    # tiktoken's format (tiktoken.load.load_tiktoken_bpe): one "<base64 token> <rank>" per line
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


@functools.cache
def _load(name: str) -> Any:
    import tiktoken

    pattern, sha256, special = _ENCODINGS[name]
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=_read_ranks(name, sha256), special_tokens=special)


def encoding_for(model: str | None) -> Any:
    """Return the tiktoken ``Encoding`` of *model*, loaded from the shipped files, or ``None``.

    ``None`` for a model outside the OpenAI family, or when tiktoken is not installed or the
    shipped file cannot be read (then the estimate is used). The first call for an encoding reads
    its file (about 0.3 s for ``o200k_base``); later calls return the same object.
    """
    name = encoding_name_for(model)
    if name is None:
        return None
    try:
        with _load_lock:  # two streams ending together load the file once
            return _load(name)
    except Exception:  # noqa: BLE001 - an estimate is better than no count at all
        return None


def count_tokens(text: str, model: str | None = None) -> int:
    """Count the tokens of *text* for *model*: exact with a shipped tiktoken encoding, else estimated."""
    if not text:
        return 0
    encoding = encoding_for(model)
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_usage(model: str | None, prompt: Sequence[str], completion: str, *, messages: int = 0) -> Usage:
    """Estimate the usage of a call from its prompt texts and the completion text it streamed.

    Args:
        model: the model that answered (decides the tokenizer).
        prompt: the texts of the request (message contents, roles, instructions).
        completion: the text the response streamed.
        messages: how many chat messages *prompt* came from; for a model counted with tiktoken,
            the chat format's framing tokens are added for each (as OpenAI documents them).

    Returns:
        The estimated :class:`Usage` (no cache or reasoning tokens: those cannot be seen locally).
    """
    input_tokens = sum(count_tokens(part, model) for part in prompt)
    if messages and encoding_for(model) is not None:
        input_tokens += messages * _TOKENS_PER_MESSAGE + _REPLY_PRIMING
    return Usage(input_tokens=input_tokens, output_tokens=count_tokens(completion, model))
