"""Local token counting for streams without usage: exact offline for OpenAI models, an estimate otherwise."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from otel_llmcost.instrumentation import _tokens
from otel_llmcost.pricing import Usage


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No network, and tiktoken's downloading loaders fail: the shipped files must do."""
    import tiktoken
    import tiktoken.load

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network or tiktoken download used")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    _tokens._load.cache_clear()
    yield
    _tokens._load.cache_clear()


def test_openai_tokens_are_counted_exactly_offline(offline: None) -> None:
    # the token ids OpenAI's cookbook ("How to count tokens with tiktoken") lists for this string
    assert _tokens.encoding_for("gpt-4").encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert _tokens.encoding_for("gpt-4o").encode("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert _tokens.count_tokens("tiktoken is great!", "gpt-5-mini") == 6
    assert _tokens.count_tokens("<|endoftext|> hi", "o4-mini") > 2  # special tokens are counted as text
    estimate = _tokens.estimate_usage(
        "gpt-4o-mini-2024-07-18", ["user", "tiktoken is great!"], "Hello, world!", messages=1
    )
    assert estimate == Usage(input_tokens=1 + 6 + 3 + 3, output_tokens=4)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5.1-codex", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("llama-3.3-70b-versatile", None),
        ("claude-sonnet-4-5", None),
        ("omni-moderation-latest", None),
        (None, None),
    ],
)
def test_models_map_to_the_shipped_encodings(model: str | None, encoding: str | None) -> None:
    assert _tokens.encoding_name_for(model) == encoding


def test_other_models_take_the_documented_estimate(offline: None) -> None:
    text = "The quick brown fox jumps over the lazy dog."  # 44 characters; 10 tokens for OpenAI's encodings
    assert _tokens.count_tokens(text, "llama-3.3-70b-versatile") == math.ceil(len(text) / 4) == 11
    assert _tokens.count_tokens(text, None) == 11 and _tokens.count_tokens(text, "gpt-4o") == 10
    # no framing tokens without an exact tokenizer: the estimate is the documented rule, nothing more
    assert _tokens.estimate_usage("mistral-large", [text], "", messages=1) == Usage(input_tokens=11)


def test_a_damaged_tokenizer_file_falls_back_to_the_estimate(
    offline: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    (tmp_path / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(b"dGVzdA== 0\n"))  # a valid file, wrong hash
    monkeypatch.setattr(_tokens, "TOKENIZER_DIR", tmp_path)
    assert _tokens.encoding_for("gpt-4o") is None
    assert _tokens.count_tokens("The quick brown fox jumps over the lazy dog.", "gpt-4o") == 11
