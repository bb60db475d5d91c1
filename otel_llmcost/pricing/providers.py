"""Provider names: the many spellings instrumentations use, mapped to catalog provider ids.

Pure module: no OpenTelemetry import. Catalog provider ids are short and stable (``openai``,
``bedrock``, ``vertex``); span attributes carry OpenTelemetry's values (``aws.bedrock``,
``gcp.vertex_ai``), older ones (``az.ai.openai``, ``vertex_ai``), OpenLLMetry's capitalised ones
(``OpenAI``, ``AWS``) or LiteLLM-style prefixes (``openai/gpt-4o``).
"""

from __future__ import annotations

import re
from functools import lru_cache

# Catalog provider id -> every name that means it (compared after normalize_name()).
_PROVIDER_NAMES: dict[str, tuple[str, ...]] = {
    "openai": ("openai", "open_ai"),
    "anthropic": ("anthropic", "claude"),
    "google": ("gcp.gemini", "gemini", "google", "google_genai", "google.genai", "googleai", "google_ai", "gcp.gen_ai"),
    "vertex": ("gcp.vertex_ai", "vertex_ai", "vertexai", "vertex", "google_vertex", "gcp.vertex"),
    "bedrock": ("aws.bedrock", "bedrock", "aws_bedrock", "amazon_bedrock", "aws", "bedrock_converse"),
    "azure": ("azure.ai.openai", "az.ai.openai", "azure", "azure_openai", "azureopenai", "azure.openai"),
    "azure_ai": ("azure.ai.inference", "az.ai.inference", "azure_ai", "azure_ai_inference"),
    "mistral": ("mistral_ai", "mistral", "mistralai"),
    "deepseek": ("deepseek", "deepseek_ai"),
    "xai": ("x_ai", "xai", "grok"),
    "groq": ("groq",),
    "together": ("together", "together_ai", "togetherai"),
    "cohere": ("cohere",),
    "perplexity": ("perplexity", "perplexity_ai"),
    "fireworks": ("fireworks", "fireworks_ai"),
    "openrouter": ("openrouter",),
    "cerebras": ("cerebras",),
    "deepinfra": ("deepinfra",),
    "ibm": ("ibm.watsonx.ai", "watsonx", "ibm_watsonx"),
    "ollama": ("ollama",),
    "vllm": ("vllm",),
    "nebius": ("nebius", "nebius_ai", "nebius_ai_studio"),
    "novita": ("novita", "novita_ai", "novitaai"),
    "moonshot": ("moonshot", "moonshot_ai", "moonshotai", "kimi"),
    "qwen": ("qwen", "alibaba", "alibaba_cloud", "dashscope", "alibaba_qwen"),
    "zhipu": ("zhipu", "zhipuai", "zhipu_ai", "z_ai", "zai", "glm"),
    "ai21": ("ai21", "ai21_labs"),
    "sambanova": ("sambanova", "sambanova_cloud"),
    "hyperbolic": ("hyperbolic",),
    "lambda": ("lambda", "lambda_labs", "lambdalabs"),
    "minimax": ("minimax",),
}

_BY_NAME: dict[str, str] = {name: pid for pid, names in _PROVIDER_NAMES.items() for name in names}

# Host suffix -> catalog provider id. An OpenAI-compatible client reports provider "openai" whatever
# endpoint it talks to; the endpoint is what bills, so a known host wins.
_HOSTS: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    (".services.ai.azure.com", "azure_ai"),
    (".models.ai.azure.com", "azure_ai"),
    ("api.openai.com", "openai"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "google"),
    ("aiplatform.googleapis.com", "vertex"),
    ("api.groq.com", "groq"),
    ("api.together.xyz", "together"),
    ("api.together.ai", "together"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "xai"),
    ("api.mistral.ai", "mistral"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("api.perplexity.ai", "perplexity"),
    ("api.fireworks.ai", "fireworks"),
    ("openrouter.ai", "openrouter"),
    ("api.cerebras.ai", "cerebras"),
    ("api.deepinfra.com", "deepinfra"),
    ("api.studio.nebius.ai", "nebius"),
    ("api.studio.nebius.com", "nebius"),
    ("api.tokenfactory.nebius.com", "nebius"),
    ("api.novita.ai", "novita"),
    ("api.moonshot.ai", "moonshot"),
    ("api.moonshot.cn", "moonshot"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
    ("open.bigmodel.cn", "zhipu"),
    ("api.z.ai", "zhipu"),
    ("api.ai21.com", "ai21"),
    ("api.sambanova.ai", "sambanova"),
    ("api.hyperbolic.xyz", "hyperbolic"),
    ("api.lambda.ai", "lambda"),
    ("api.lambdalabs.com", "lambda"),
    ("api.minimax.io", "minimax"),
    ("api.minimaxi.com", "minimax"),
)
_BEDROCK_HOST = re.compile(r"^bedrock(?:-runtime)?(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$")

_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_name(name: str) -> str:
    """Lower-case a provider name and fold spaces and hyphens to ``_`` (``Vertex AI`` -> ``vertex_ai``)."""
    return _SEPARATORS.sub("_", name.strip().lower())


@lru_cache(maxsize=1024)
def canonical_provider(name: str | None) -> str | None:
    """Return the catalog provider id for a provider name, or ``None`` when the name is unknown.

    Args:
        name: a ``gen_ai.provider.name`` / ``gen_ai.system`` value or a catalog id.

    Returns:
        The catalog provider id, or ``None`` for an empty or unknown name.
    """
    if not name:
        return None
    return _BY_NAME.get(normalize_name(name))


@lru_cache(maxsize=1024)
def provider_from_address(address: str | None) -> str | None:
    """Return the catalog provider id that a ``server.address`` belongs to, or ``None``.

    Args:
        address: a host name such as ``myres.openai.azure.com``.
    """
    if not address:
        return None
    host = address.strip().lower().rstrip(".")
    if _BEDROCK_HOST.match(host):
        return "bedrock"
    for suffix, provider in _HOSTS:
        name = suffix.lstrip(".")
        # "api.openai.com", a subdomain of it, or a regional "us-central1-aiplatform..." form
        if host == name or host.endswith("." + name) or (suffix[0] != "." and host.endswith("-" + name)):
            return provider
    return None


_REGION_IN_HOST = (
    _BEDROCK_HOST,  # bedrock-runtime.eu-west-1.amazonaws.com
    re.compile(r"^([a-z]+-[a-z]+\d+)-aiplatform\.googleapis\.com$"),  # europe-west4-aiplatform...
)


@lru_cache(maxsize=1024)
def region_from_address(address: str | None) -> str | None:
    """Return the cloud region an endpoint host names (Bedrock, Vertex), or ``None``."""
    if not address:
        return None
    host = address.strip().lower().rstrip(".")
    for pattern in _REGION_IN_HOST:
        found = pattern.match(host)
        if found:
            return found.group(1)
    return None


def semconv_provider_name(provider: str) -> str:
    """Return the OpenTelemetry ``gen_ai.provider.name`` value for a catalog provider id.

    The first name listed for a provider is its OpenTelemetry value where one exists
    (``bedrock`` -> ``aws.bedrock``); other strings are returned unchanged.
    """
    names = _PROVIDER_NAMES.get(provider)
    return names[0] if names else provider


def known_providers() -> tuple[str, ...]:
    """Return every catalog provider id this module knows a name for."""
    return tuple(_PROVIDER_NAMES)
