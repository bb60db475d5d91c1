"""Attribute and metric names of otel-llmcost.

GENERATED FILE: do not edit. Regenerate with `python scripts/gen_semconv.py` from the registry in
semconv/; the test suite fails when this file and the registry drift.
"""

from typing import Final

# --- registry.llmcost.bedrock: OpenTelemetry attributes otel-llmcost's Bedrock instrumentation sets on its spans.

CLOUD_REGION: Final = "cloud.region"
"""The AWS region the Bedrock Runtime client called (OpenTelemetry cloud.region, the region of the called destination). (registry: semconv/bedrock.yaml#cloud.region)"""

AWS_REQUEST_ID: Final = "aws.request_id"
"""The AWS request id of the call, as returned in the x-amzn-RequestId response header (OpenTelemetry aws.request_id). (registry: semconv/bedrock.yaml#aws.request_id)"""


# --- registry.llmcost.budgets: Label names of the budget metrics and of the generated budget rules and alerts.

BUDGET: Final = "budget"
"""The name of a budget or rate limit in the budgets file. (registry: semconv/budgets.yaml#budget)"""

WINDOW: Final = "window"
"""The window of a budget as the budgets file spells it (1h, 1d, 7d, 30d, month). (registry: semconv/budgets.yaml#window)"""

THRESHOLD: Final = "threshold"
"""A fraction of a budget's limit at which an alert fires, canonically spelled (0.5, 0.8, 0.95, 1). (registry: semconv/budgets.yaml#threshold)"""

SEVERITY: Final = "severity"
"""The severity of a budget alert (info, warning, critical); Alertmanager routes by it. (registry: semconv/budgets.yaml#severity)"""

USER: Final = "user"
"""An end user id, only on llm_budget_user_utilization_ratio and only for the few users closest to a per-user budget (capped). (registry: semconv/budgets.yaml#user)"""

ACTION: Final = "action"
"""What the guard did about a breached budget or rate limit. (registry: semconv/budgets.yaml#action)"""

ACTION_RAISE: Final = "raise"
"""The guard refused the call with BudgetExceededError. (registry: semconv/budgets.yaml#action.raise)"""

ACTION_LOG: Final = "log"
"""The guard logged the breach and let the call go ahead. (registry: semconv/budgets.yaml#action.log)"""

POLICY: Final = "policy"
"""The guard's failure policy when its state (Redis) is unreachable. (registry: semconv/budgets.yaml#policy)"""

POLICY_OPEN: Final = "open"
"""The guard state was unreachable and calls went ahead unguarded. (registry: semconv/budgets.yaml#policy.open)"""

POLICY_CLOSED: Final = "closed"
"""The guard state was unreachable and calls of raise limits were refused. (registry: semconv/budgets.yaml#policy.closed)"""


# --- metric.llm.budget.user_utilization_ratio (gauge)

METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO: Final = "llm.budget.user_utilization_ratio"
"""Spend / limit of the users closest to a per-user budget in its current window, for at most a capped number of users at or above a fraction of their limit. Prometheus llm_budget_user_utilization_ratio. (registry: semconv/budgets.yaml#metric.llm.budget.user_utilization_ratio)"""

METRIC_LLM_BUDGET_USER_UTILIZATION_RATIO_UNIT: Final = "1"
"""Unit of llm.budget.user_utilization_ratio. (registry: semconv/budgets.yaml#metric.llm.budget.user_utilization_ratio)"""


# --- metric.llm.budget.users_over_threshold (gauge)

METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD: Final = "llm.budget.users_over_threshold"
"""How many users of a per-user budget are over each threshold in the current window (this process's count; summable across processes sharing nothing). Prometheus llm_budget_users_over_threshold. (registry: semconv/budgets.yaml#metric.llm.budget.users_over_threshold)"""

METRIC_LLM_BUDGET_USERS_OVER_THRESHOLD_UNIT: Final = "{user}"
"""Unit of llm.budget.users_over_threshold. (registry: semconv/budgets.yaml#metric.llm.budget.users_over_threshold)"""


# --- metric.llm.budget.guard.breaches (counter)

METRIC_LLM_BUDGET_GUARD_BREACHES: Final = "llm.budget.guard.breaches"
"""Guard checks that found a budget or rate limit breached, by what the guard did. Prometheus llm_budget_guard_breaches_total. (registry: semconv/budgets.yaml#metric.llm.budget.guard.breaches)"""

METRIC_LLM_BUDGET_GUARD_BREACHES_UNIT: Final = "{breach}"
"""Unit of llm.budget.guard.breaches. (registry: semconv/budgets.yaml#metric.llm.budget.guard.breaches)"""


# --- metric.llm.budget.guard.errors (counter)

METRIC_LLM_BUDGET_GUARD_ERRORS: Final = "llm.budget.guard.errors"
"""Guard checks or settlements that could not use the guard state (Redis unreachable, timeout, an internal error), by failure policy and reason. Prometheus llm_budget_guard_errors_total. (registry: semconv/budgets.yaml#metric.llm.budget.guard.errors)"""

METRIC_LLM_BUDGET_GUARD_ERRORS_UNIT: Final = "{error}"
"""Unit of llm.budget.guard.errors. (registry: semconv/budgets.yaml#metric.llm.budget.guard.errors)"""


# --- metric.llm_budget_limit_usd (gauge)

METRIC_LLM_BUDGET_LIMIT_USD: Final = "llm_budget_limit_usd"
"""The limit of each budget in USD, written by the generated Prometheus recording rules (not by a process), so dashboards can show burn against it. (registry: semconv/budgets.yaml#metric.llm_budget_limit_usd)"""

METRIC_LLM_BUDGET_LIMIT_USD_UNIT: Final = "{USD}"
"""Unit of llm_budget_limit_usd. (registry: semconv/budgets.yaml#metric.llm_budget_limit_usd)"""


# --- metric.budget.llm_cost_usd.spend (gauge)

METRIC_BUDGET_LLM_COST_USD_SPEND: Final = "budget:llm_cost_usd:spend"
"""Generated recording rule: the spend of each budget over its window (rolling, or month-to-date in UTC for window month). (registry: semconv/budgets.yaml#metric.budget.llm_cost_usd.spend)"""

METRIC_BUDGET_LLM_COST_USD_SPEND_UNIT: Final = "{USD}"
"""Unit of budget:llm_cost_usd:spend. (registry: semconv/budgets.yaml#metric.budget.llm_cost_usd.spend)"""


# --- metric.budget.llm_cost_usd.increase1h (gauge)

METRIC_BUDGET_LLM_COST_USD_INCREASE1H: Final = "budget:llm_cost_usd:increase1h"
"""Generated recording rule: the spend of a calendar-month budget in the last hour, summed into its month-to-date spend. (registry: semconv/budgets.yaml#metric.budget.llm_cost_usd.increase1h)"""

METRIC_BUDGET_LLM_COST_USD_INCREASE1H_UNIT: Final = "{USD}"
"""Unit of budget:llm_cost_usd:increase1h. (registry: semconv/budgets.yaml#metric.budget.llm_cost_usd.increase1h)"""


# --- registry.llmcost.genai_content: Prompt and completion content our instrumentation writes when content capture is opted in.

GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""The system instructions sent apart from the chat history, as JSON (a list of parts); only when message content capture is opted in. (registry: semconv/genai_content.yaml#gen_ai.system_instructions)"""

GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
"""The tools the request offered the model, as JSON (type, name, description, parameters); only when message content capture is opted in. (registry: semconv/genai_content.yaml#gen_ai.tool.definitions)"""

LLM_CONTENT_TRUNCATED: Final = "llm.content.truncated"
"""The content attributes of this span that were cut to the size cap (OTEL_LLMCOST_CONTENT_MAX_LENGTH); truncated strings end in a "…[truncated N chars]" marker. (registry: semconv/genai_content.yaml#llm.content.truncated)"""


# --- registry.gen_ai.input: OpenTelemetry GenAI semantic-convention attributes that otel-llmcost reads.

GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
"""The GenAI provider as identified by the client or server instrumentation. (registry: semconv/registry.yaml#gen_ai.provider.name)"""

GEN_AI_SYSTEM: Final = "gen_ai.system"
"""Older name of gen_ai.provider.name, still emitted by many instrumentations. (registry: semconv/registry.yaml#gen_ai.system)"""

GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
"""The name of the model a request asked for. (registry: semconv/registry.yaml#gen_ai.request.model)"""

GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
"""The name of the model that generated the response; wins over the request model for pricing. (registry: semconv/registry.yaml#gen_ai.response.model)"""

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
"""The name of the operation being performed. (registry: semconv/registry.yaml#gen_ai.operation.name)"""

GEN_AI_OPERATION_NAME_IMAGE_GENERATION: Final = "image_generation"
"""otel-llmcost's value for creating images from a prompt (OpenAI images.generate). (registry: semconv/registry.yaml#gen_ai.operation.name.image_generation)"""

GEN_AI_OPERATION_NAME_IMAGE_EDIT: Final = "image_edit"
"""otel-llmcost's value for editing or extending images (OpenAI images.edit). (registry: semconv/registry.yaml#gen_ai.operation.name.image_edit)"""

GEN_AI_OPERATION_NAME_IMAGE_VARIATION: Final = "image_variation"
"""otel-llmcost's value for variations of an image (OpenAI images.create_variation). (registry: semconv/registry.yaml#gen_ai.operation.name.image_variation)"""

GEN_AI_OPERATION_NAME_TRANSCRIPTION: Final = "transcription"
"""otel-llmcost's value for speech to text (OpenAI audio.transcriptions.create). (registry: semconv/registry.yaml#gen_ai.operation.name.transcription)"""

GEN_AI_OPERATION_NAME_TRANSLATION: Final = "translation"
"""otel-llmcost's value for speech to English text (OpenAI audio.translations.create). (registry: semconv/registry.yaml#gen_ai.operation.name.translation)"""

GEN_AI_OPERATION_NAME_SPEECH: Final = "speech"
"""otel-llmcost's value for text to speech (OpenAI audio.speech.create). (registry: semconv/registry.yaml#gen_ai.operation.name.speech)"""

GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""Input tokens, including cache reads and cache writes (OpenTelemetry semantics). (registry: semconv/registry.yaml#gen_ai.usage.input_tokens)"""

GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""Output tokens, including reasoning tokens. (registry: semconv/registry.yaml#gen_ai.usage.output_tokens)"""

GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens served from the provider's prompt cache (a subset of input tokens). (registry: semconv/registry.yaml#gen_ai.usage.cache_read.input_tokens)"""

GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""Input tokens written to the provider's prompt cache (a subset of input tokens). (registry: semconv/registry.yaml#gen_ai.usage.cache_creation.input_tokens)"""

GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Output tokens spent on reasoning (a subset of output tokens). (registry: semconv/registry.yaml#gen_ai.usage.reasoning.output_tokens)"""

GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""Conversation or session id as the instrumentation knows it; used as the session when no session.id is set. (registry: semconv/registry.yaml#gen_ai.conversation.id)"""

SERVER_ADDRESS: Final = "server.address"
"""Server domain name; selects regional or endpoint-specific prices where they differ. (registry: semconv/registry.yaml#server.address)"""

ERROR_TYPE: Final = "error.type"
"""Describes a class of error the operation ended with. (registry: semconv/registry.yaml#error.type)"""

ENDUSER_ID: Final = "enduser.id"
"""Older name of user.id. (registry: semconv/registry.yaml#enduser.id)"""


# --- registry.gen_ai.written: OpenTelemetry GenAI attributes that otel-llmcost's own SDK instrumentation sets on its spans.

GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
"""The provider's unique id of the completion. (registry: semconv/registry.yaml#gen_ai.response.id)"""

GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
"""Why the model stopped generating, one per choice. (registry: semconv/registry.yaml#gen_ai.response.finish_reasons)"""

SERVER_PORT: Final = "server.port"
"""Server port number. (registry: semconv/registry.yaml#server.port)"""

GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
"""The maximum number of tokens the model may generate. (registry: semconv/registry.yaml#gen_ai.request.max_tokens)"""

GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
"""The temperature setting of the request. (registry: semconv/registry.yaml#gen_ai.request.temperature)"""

GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
"""The top_p sampling setting of the request. (registry: semconv/registry.yaml#gen_ai.request.top_p)"""

GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
"""Whether the response was requested as a stream. (registry: semconv/registry.yaml#gen_ai.request.stream)"""

GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
"""The encoding formats requested in an embeddings operation. (registry: semconv/registry.yaml#gen_ai.request.encoding_formats)"""

GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
"""The number of candidates (choices, images) the request asked for. (registry: semconv/registry.yaml#gen_ai.request.choice.count)"""

GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
"""The content type the client requested (text, json, image, speech). (registry: semconv/registry.yaml#gen_ai.output.type)"""

GEN_AI_OUTPUT_TYPE_TEXT: Final = "text"
"""Plain text. (registry: semconv/registry.yaml#gen_ai.output.type.text)"""

GEN_AI_OUTPUT_TYPE_JSON: Final = "json"
"""JSON object with known or unknown schema. (registry: semconv/registry.yaml#gen_ai.output.type.json)"""

GEN_AI_OUTPUT_TYPE_IMAGE: Final = "image"
"""Image. (registry: semconv/registry.yaml#gen_ai.output.type.image)"""

GEN_AI_OUTPUT_TYPE_SPEECH: Final = "speech"
"""Speech. (registry: semconv/registry.yaml#gen_ai.output.type.speech)"""

LLM_REQUEST_IMAGE_SIZE: Final = "llm.request.image.size"
"""The image size an image request asked for (OpenAI size, e.g. 1024x1024); prices per image can depend on it. (registry: semconv/registry.yaml#llm.request.image.size)"""

LLM_REQUEST_IMAGE_QUALITY: Final = "llm.request.image.quality"
"""The image quality an image request asked for (OpenAI quality, e.g. standard, hd, high); prices per image can depend on it. (registry: semconv/registry.yaml#llm.request.image.quality)"""

GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""The chat history sent to the model, as JSON; only when message content capture is opted in. (registry: semconv/registry.yaml#gen_ai.input.messages)"""

GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""The messages the model returned, as JSON; only when message content capture is opted in. (registry: semconv/registry.yaml#gen_ai.output.messages)"""


# --- registry.llm.input_variants: Names older GenAI conventions, OpenLLMetry, OpenLIT and OpenInference use for the same facts; read only.

VARIANT_GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
"""Older name of gen_ai.usage.input_tokens (OpenLLMetry, older GenAI conventions). (registry: semconv/registry.yaml#gen_ai.usage.prompt_tokens)"""

VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
"""Older name of gen_ai.usage.output_tokens. (registry: semconv/registry.yaml#gen_ai.usage.completion_tokens)"""

VARIANT_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
"""OpenLLMetry's name for cache-read input tokens. (registry: semconv/registry.yaml#gen_ai.usage.cache_read_input_tokens)"""

VARIANT_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation_input_tokens"
"""OpenLLMetry's name for cache-write input tokens. (registry: semconv/registry.yaml#gen_ai.usage.cache_creation_input_tokens)"""

VARIANT_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""An alternative name for cache-write input tokens. (registry: semconv/registry.yaml#gen_ai.usage.cache_write.input_tokens)"""

VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_READ: Final = "gen_ai.usage.prompt_tokens_details.cache_read"
"""OpenLIT's name for cache-read input tokens. (registry: semconv/registry.yaml#gen_ai.usage.prompt_tokens_details.cache_read)"""

VARIANT_GEN_AI_USAGE_PROMPT_TOKENS_DETAILS_CACHE_WRITE: Final = "gen_ai.usage.prompt_tokens_details.cache_write"
"""OpenLIT's name for cache-write input tokens. (registry: semconv/registry.yaml#gen_ai.usage.prompt_tokens_details.cache_write)"""

VARIANT_GEN_AI_USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning_tokens"
"""OpenLIT's and OpenLLMetry's name for reasoning output tokens. (registry: semconv/registry.yaml#gen_ai.usage.reasoning_tokens)"""

VARIANT_GEN_AI_USAGE_COMPLETION_TOKENS_DETAILS_REASONING: Final = "gen_ai.usage.completion_tokens_details.reasoning"
"""OpenLIT's detailed name for reasoning output tokens. (registry: semconv/registry.yaml#gen_ai.usage.completion_tokens_details.reasoning)"""

VARIANT_LLM_REQUEST_TYPE: Final = "llm.request.type"
"""OpenLLMetry's operation name (chat, completion, embedding, rerank). (registry: semconv/registry.yaml#llm.request.type)"""

VARIANT_LLM_MODEL_NAME: Final = "llm.model_name"
"""OpenInference's model name. (registry: semconv/registry.yaml#llm.model_name)"""

VARIANT_LLM_PROVIDER: Final = "llm.provider"
"""OpenInference's hosting provider. (registry: semconv/registry.yaml#llm.provider)"""

VARIANT_LLM_SYSTEM: Final = "llm.system"
"""OpenInference's model family vendor. (registry: semconv/registry.yaml#llm.system)"""

VARIANT_LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
"""OpenInference's input token count (cache included). (registry: semconv/registry.yaml#llm.token_count.prompt)"""

VARIANT_LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
"""OpenInference's output token count (reasoning included). (registry: semconv/registry.yaml#llm.token_count.completion)"""

VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
"""OpenInference's cache-read input token count. (registry: semconv/registry.yaml#llm.token_count.prompt_details.cache_read)"""

VARIANT_LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
"""OpenInference's cache-write input token count. (registry: semconv/registry.yaml#llm.token_count.prompt_details.cache_write)"""

VARIANT_LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING: Final = "llm.token_count.completion_details.reasoning"
"""OpenInference's reasoning token count. (registry: semconv/registry.yaml#llm.token_count.completion_details.reasoning)"""


# --- registry.llm.usage: Usage facts that the GenAI conventions do not have yet and our instrumentation writes.

LLM_USAGE_CACHE_CREATION_1H_INPUT_TOKENS: Final = "llm.usage.cache_creation_1h.input_tokens"
"""The part of the cache-write input tokens written with a one-hour TTL (billed at the 1 h rate). (registry: semconv/registry.yaml#llm.usage.cache_creation_1h.input_tokens)"""


# --- registry.llm.usage_v2: Usage and billing facts some prices depend on (audio, images, search, batch, service tier).

LLM_USAGE_AUDIO_INPUT_TOKENS: Final = "llm.usage.audio.input_tokens"
"""The part of the uncached input tokens that is audio. (registry: semconv/registry.yaml#llm.usage.audio.input_tokens)"""

LLM_USAGE_AUDIO_OUTPUT_TOKENS: Final = "llm.usage.audio.output_tokens"
"""The part of the output tokens that is audio. (registry: semconv/registry.yaml#llm.usage.audio.output_tokens)"""

LLM_USAGE_IMAGE_OUTPUT_TOKENS: Final = "llm.usage.image.output_tokens"
"""The part of the output tokens that is image tokens (image generation). (registry: semconv/registry.yaml#llm.usage.image.output_tokens)"""

LLM_USAGE_IMAGES: Final = "llm.usage.images"
"""Images generated by the call. (registry: semconv/registry.yaml#llm.usage.images)"""

LLM_USAGE_AUDIO_SECONDS: Final = "llm.usage.audio_seconds"
"""Seconds of audio processed (transcription, speech), for per-minute prices. (registry: semconv/registry.yaml#llm.usage.audio_seconds)"""

LLM_USAGE_WEB_SEARCH_CALLS: Final = "llm.usage.web_search_calls"
"""Web-search tool calls the model made. (registry: semconv/registry.yaml#llm.usage.web_search_calls)"""

OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
"""The service tier requested (OpenAI and compatible APIs), e.g. flex or priority. (registry: semconv/registry.yaml#openai.request.service_tier)"""

LLM_REQUEST_BATCH: Final = "llm.request.batch"
"""The call went through the provider's batch API (batch prices apply). (registry: semconv/registry.yaml#llm.request.batch)"""

LLM_REQUEST_SEARCH_CONTEXT_SIZE: Final = "llm.request.search_context_size"
"""The search context size of a search model request (low, medium, high). (registry: semconv/registry.yaml#llm.request.search_context_size)"""


# --- registry.llm.cost: The price of one LLM call, written onto its span.

LLM_COST_TOTAL_USD: Final = "llm.cost.total_usd"
"""Total cost of the call in US dollars. (registry: semconv/registry.yaml#llm.cost.total_usd)"""

LLM_COST_INPUT_USD: Final = "llm.cost.input_usd"
"""Cost of the uncached input tokens. (registry: semconv/registry.yaml#llm.cost.input_usd)"""

LLM_COST_OUTPUT_USD: Final = "llm.cost.output_usd"
"""Cost of the output tokens, reasoning included. (registry: semconv/registry.yaml#llm.cost.output_usd)"""

LLM_COST_CACHE_READ_USD: Final = "llm.cost.cache_read_usd"
"""Cost of the input tokens read from the prompt cache. (registry: semconv/registry.yaml#llm.cost.cache_read_usd)"""

LLM_COST_CACHE_WRITE_USD: Final = "llm.cost.cache_write_usd"
"""Cost of the input tokens written to the prompt cache (5 min and 1 h together). (registry: semconv/registry.yaml#llm.cost.cache_write_usd)"""

LLM_COST_REQUEST_USD: Final = "llm.cost.request_usd"
"""Per-request fees. (registry: semconv/registry.yaml#llm.cost.request_usd)"""

LLM_COST_STATUS: Final = "llm.cost.status"
"""How the cost of the call was determined. (registry: semconv/registry.yaml#llm.cost.status)"""

LLM_COST_STATUS_PRICED: Final = "priced"
"""Priced from the catalog with the usage the span reports. (registry: semconv/registry.yaml#llm.cost.status.priced)"""

LLM_COST_STATUS_UNPRICED: Final = "unpriced"
"""The provider or model is not in the catalog; no cost attributes are written (never 0). (registry: semconv/registry.yaml#llm.cost.status.unpriced)"""

LLM_COST_STATUS_NO_USAGE: Final = "no_usage"
"""The span reports no token counts to price. (registry: semconv/registry.yaml#llm.cost.status.no_usage)"""

LLM_COST_STATUS_INVALID_USAGE: Final = "invalid_usage"
"""The span's token counts are negative, absurd or not numbers; not priced, llm.cost.reason says why. (registry: semconv/registry.yaml#llm.cost.status.invalid_usage)"""

LLM_COST_STATUS_ESTIMATED: Final = "estimated"
"""Priced from token counts estimated locally (for example a stream without a usage report). (registry: semconv/registry.yaml#llm.cost.status.estimated)"""

LLM_COST_STATUS_PROVIDER_REPORTED: Final = "provider_reported"
"""The cost the provider itself reported for the call. (registry: semconv/registry.yaml#llm.cost.status.provider_reported)"""

LLM_COST_REASON: Final = "llm.cost.reason"
"""Why a call was not priced (status unpriced, no_usage or invalid_usage), in words a person can act on. (registry: semconv/registry.yaml#llm.cost.reason)"""

LLM_COST_PRICING_MODEL: Final = "llm.cost.pricing.model"
"""The catalog model id that matched. (registry: semconv/registry.yaml#llm.cost.pricing.model)"""

LLM_COST_PRICING_PROVIDER: Final = "llm.cost.pricing.provider"
"""The catalog provider id that matched. (registry: semconv/registry.yaml#llm.cost.pricing.provider)"""

LLM_COST_PRICING_VERSION: Final = "llm.cost.pricing.version"
"""The version of the price catalog used. (registry: semconv/registry.yaml#llm.cost.pricing.version)"""

LLM_COST_COVERED_BY: Final = "llm.cost.covered_by"
"""On another instrumentation's span of a call that one of ours also traced: the span id (16 lowercase hex digits) of the span that carries the call's cost. Neither the span processor nor the collector prices or counts a span that has it: one call, one cost. (registry: semconv/registry.yaml#llm.cost.covered_by)"""


# --- registry.llm.session: Grouping attributes the application sets through otel_llmcost.session/user/properties; carried in baggage.

SESSION_ID: Final = "session.id"
"""A unique id of the session (a whole user workflow). (registry: semconv/registry.yaml#session.id)"""

LLM_SESSION_NAME: Final = "llm.session.name"
"""The kind of session, used to compare sessions of one kind (low cardinality). (registry: semconv/registry.yaml#llm.session.name)"""

LLM_SESSION_PATH: Final = "llm.session.path"
"""Where in the session's workflow the call happened. (registry: semconv/registry.yaml#llm.session.path)"""

USER_ID: Final = "user.id"
"""The end user on whose behalf the call was made. (registry: semconv/registry.yaml#user.id)"""

LLM_PROPERTY: Final = "llm.property"
"""A custom property of the call, chosen by the application (llm.property.<key>). (registry: semconv/registry.yaml#llm.property)"""


# --- registry.llm.metric_labels: Short label names of the llm_* metrics (low cardinality only; ids and text never become labels).

PROVIDER: Final = "provider"
"""Catalog provider id, or the raw provider name when unpriced. (registry: semconv/registry.yaml#provider)"""

MODEL: Final = "model"
"""Catalog model id, or the raw model name when unpriced (capped; the rest fold into "other"). (registry: semconv/registry.yaml#model)"""

OPERATION: Final = "operation"
"""The GenAI operation name. (registry: semconv/registry.yaml#operation)"""

STATUS: Final = "status"
"""Outcome of the call. (registry: semconv/registry.yaml#status)"""

STATUS_OK: Final = "ok"
"""The call succeeded. (registry: semconv/registry.yaml#status.ok)"""

STATUS_ERROR: Final = "error"
"""The call ended with an error. (registry: semconv/registry.yaml#status.error)"""

COST_STATUS: Final = "cost_status"
"""The llm.cost.status of the call. (registry: semconv/registry.yaml#cost_status)"""

TOKEN_TYPE: Final = "token_type"
"""The kind of token counted. (registry: semconv/registry.yaml#token_type)"""

TOKEN_TYPE_INPUT: Final = "input"
"""Uncached input tokens. (registry: semconv/registry.yaml#token_type.input)"""

TOKEN_TYPE_OUTPUT: Final = "output"
"""Output tokens, reasoning included. (registry: semconv/registry.yaml#token_type.output)"""

TOKEN_TYPE_CACHE_READ: Final = "cache_read"
"""Input tokens read from the cache. (registry: semconv/registry.yaml#token_type.cache_read)"""

TOKEN_TYPE_CACHE_WRITE: Final = "cache_write"
"""Input tokens written to the cache. (registry: semconv/registry.yaml#token_type.cache_write)"""

TOKEN_TYPE_REASONING: Final = "reasoning"
"""Reasoning tokens (also counted in output). (registry: semconv/registry.yaml#token_type.reasoning)"""

REASON: Final = "reason"
"""Why a span was skipped or a value folded. (registry: semconv/registry.yaml#reason)"""

DIMENSION: Final = "dimension"
"""The configured dimension whose values overflowed their cap. (registry: semconv/registry.yaml#dimension)"""

GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
"""The type of token counted in gen_ai.client.token.usage (input or output). (registry: semconv/registry.yaml#gen_ai.token.type)"""

OUTCOME: Final = "outcome"
"""What the collector did with a span (spans, llm, priced, unpriced, invalid, duplicates, already_priced, covered). (registry: semconv/registry.yaml#outcome)"""

EXPORTER: Final = "exporter"
"""The collector exporter a figure is about. (registry: semconv/registry.yaml#exporter)"""


# --- metric.llm.cost.usd (counter)

METRIC_LLM_COST_USD: Final = "llm.cost.usd"
"""Money spent on LLM calls, in US dollars. Prometheus llm_cost_usd_total. (registry: semconv/registry.yaml#metric.llm.cost.usd)"""

METRIC_LLM_COST_USD_UNIT: Final = "{USD}"
"""Unit of llm.cost.usd. (registry: semconv/registry.yaml#metric.llm.cost.usd)"""


# --- metric.llm.requests (counter)

METRIC_LLM_REQUESTS: Final = "llm.requests"
"""LLM calls seen, by outcome and cost status. Prometheus llm_requests_total. (registry: semconv/registry.yaml#metric.llm.requests)"""

METRIC_LLM_REQUESTS_UNIT: Final = "{request}"
"""Unit of llm.requests. (registry: semconv/registry.yaml#metric.llm.requests)"""


# --- metric.llm.tokens (counter)

METRIC_LLM_TOKENS: Final = "llm.tokens"
"""Tokens used by LLM calls, by type. Prometheus llm_tokens_total. (registry: semconv/registry.yaml#metric.llm.tokens)"""

METRIC_LLM_TOKENS_UNIT: Final = "{token}"
"""Unit of llm.tokens. (registry: semconv/registry.yaml#metric.llm.tokens)"""


# --- metric.llm.cost.cache_savings_usd (counter)

METRIC_LLM_COST_CACHE_SAVINGS_USD: Final = "llm.cost.cache_savings_usd"
"""What prompt caching saved, in US dollars: for each priced call, its cache-read tokens x (input price - cache-read price), at the period, tier and billing options the call was priced at (any cached token priced below the input price counts here). Gross: the premium paid for cache writes is counted apart, in llm.cost.cache_write_premium_usd; net savings = this - that. Prometheus llm_cost_cache_savings_usd_total; same labels as llm.cost.usd (configured dimensions included). (registry: semconv/registry.yaml#metric.llm.cost.cache_savings_usd)"""

METRIC_LLM_COST_CACHE_SAVINGS_USD_UNIT: Final = "{USD}"
"""Unit of llm.cost.cache_savings_usd. (registry: semconv/registry.yaml#metric.llm.cost.cache_savings_usd)"""


# --- metric.llm.cost.cache_write_premium_usd (counter)

METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD: Final = "llm.cost.cache_write_premium_usd"
"""What cache writes cost above the input price, in US dollars: for each priced call, its cache-write tokens x (cache-write price - input price), 5-minute and 1-hour writes each at their price (Anthropic bills writes at 1.25x or 2x the input price). Net cache savings = llm.cost.cache_savings_usd - this. Prometheus llm_cost_cache_write_premium_usd_total; same labels as llm.cost.usd. (registry: semconv/registry.yaml#metric.llm.cost.cache_write_premium_usd)"""

METRIC_LLM_COST_CACHE_WRITE_PREMIUM_USD_UNIT: Final = "{USD}"
"""Unit of llm.cost.cache_write_premium_usd. (registry: semconv/registry.yaml#metric.llm.cost.cache_write_premium_usd)"""


# --- metric.llm.sessions (counter)

METRIC_LLM_SESSIONS: Final = "llm.sessions"
"""Sessions started: counted the first time a recorder sees a session.id (or gen_ai.conversation.id) in a call, labelled with the configured dimensions of that call only (no provider or model). Approximate: a recorder remembers a bounded number of recent ids, so a session whose id was forgotten and comes back counts again, and each process or collector instance counts each session it sees. Prometheus llm_sessions_total. (registry: semconv/registry.yaml#metric.llm.sessions)"""

METRIC_LLM_SESSIONS_UNIT: Final = "{session}"
"""Unit of llm.sessions. (registry: semconv/registry.yaml#metric.llm.sessions)"""


# --- metric.llm.request.cost_usd (histogram)

METRIC_LLM_REQUEST_COST_USD: Final = "llm.request.cost_usd"
"""Distribution of the cost of one call, in US dollars. Prometheus llm_request_cost_usd. (registry: semconv/registry.yaml#metric.llm.request.cost_usd)"""

METRIC_LLM_REQUEST_COST_USD_UNIT: Final = "{USD}"
"""Unit of llm.request.cost_usd. (registry: semconv/registry.yaml#metric.llm.request.cost_usd)"""


# --- metric.gen_ai.client.token.usage (histogram)

METRIC_GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
"""Number of input and output tokens used per call (GenAI semantic conventions). (registry: semconv/registry.yaml#metric.gen_ai.client.token.usage)"""

METRIC_GEN_AI_CLIENT_TOKEN_USAGE_UNIT: Final = "{token}"
"""Unit of gen_ai.client.token.usage. (registry: semconv/registry.yaml#metric.gen_ai.client.token.usage)"""


# --- metric.gen_ai.client.operation.duration (histogram)

METRIC_GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
"""Duration of GenAI operations (GenAI semantic conventions). (registry: semconv/registry.yaml#metric.gen_ai.client.operation.duration)"""

METRIC_GEN_AI_CLIENT_OPERATION_DURATION_UNIT: Final = "s"
"""Unit of gen_ai.client.operation.duration. (registry: semconv/registry.yaml#metric.gen_ai.client.operation.duration)"""


# --- metric.llm.cost.spans_skipped (counter)

METRIC_LLM_COST_SPANS_SKIPPED: Final = "llm.cost.spans_skipped"
"""GenAI spans that could not be priced because their data was bad, or pricing failed, by reason. (registry: semconv/registry.yaml#metric.llm.cost.spans_skipped)"""

METRIC_LLM_COST_SPANS_SKIPPED_UNIT: Final = "{span}"
"""Unit of llm.cost.spans_skipped. (registry: semconv/registry.yaml#metric.llm.cost.spans_skipped)"""


# --- metric.llm.cost.dimension_overflow (counter)

METRIC_LLM_COST_DIMENSION_OVERFLOW: Final = "llm.cost.dimension_overflow"
"""Label values folded into "other" because a dimension reached its cap of distinct values. (registry: semconv/registry.yaml#metric.llm.cost.dimension_overflow)"""

METRIC_LLM_COST_DIMENSION_OVERFLOW_UNIT: Final = "{value}"
"""Unit of llm.cost.dimension_overflow. (registry: semconv/registry.yaml#metric.llm.cost.dimension_overflow)"""


# --- metric.llm.cost.catalog.info (gauge)

METRIC_LLM_COST_CATALOG_INFO: Final = "llm.cost.catalog.info"
"""Always 1; its label names the version of the price catalog in use. Prometheus llm_cost_catalog_info. (registry: semconv/registry.yaml#metric.llm.cost.catalog.info)"""

METRIC_LLM_COST_CATALOG_INFO_UNIT: Final = "{info}"
"""Unit of llm.cost.catalog.info. (registry: semconv/registry.yaml#metric.llm.cost.catalog.info)"""


# --- metric.llm.collector.spans (counter)

METRIC_LLM_COLLECTOR_SPANS: Final = "llm.collector.spans"
"""Spans the collector received, by outcome. Prometheus llm_collector_spans_total. (registry: semconv/registry.yaml#metric.llm.collector.spans)"""

METRIC_LLM_COLLECTOR_SPANS_UNIT: Final = "{span}"
"""Unit of llm.collector.spans. (registry: semconv/registry.yaml#metric.llm.collector.spans)"""


# --- metric.llm.collector.dropped (counter)

METRIC_LLM_COLLECTOR_DROPPED: Final = "llm.collector.dropped"
"""Spans the collector refused or lost, by reason. Prometheus llm_collector_dropped_total. (registry: semconv/registry.yaml#metric.llm.collector.dropped)"""

METRIC_LLM_COLLECTOR_DROPPED_UNIT: Final = "{span}"
"""Unit of llm.collector.dropped. (registry: semconv/registry.yaml#metric.llm.collector.dropped)"""


# --- metric.llm.collector.queue.depth (updowncounter)

METRIC_LLM_COLLECTOR_QUEUE_DEPTH: Final = "llm.collector.queue.depth"
"""Batches waiting in each exporter's queue. Prometheus llm_collector_queue_depth. (registry: semconv/registry.yaml#metric.llm.collector.queue.depth)"""

METRIC_LLM_COLLECTOR_QUEUE_DEPTH_UNIT: Final = "{batch}"
"""Unit of llm.collector.queue.depth. (registry: semconv/registry.yaml#metric.llm.collector.queue.depth)"""


# --- metric.llm.collector.export.failures (counter)

METRIC_LLM_COLLECTOR_EXPORT_FAILURES: Final = "llm.collector.export.failures"
"""Failed export attempts, by exporter. Prometheus llm_collector_export_failures_total. (registry: semconv/registry.yaml#metric.llm.collector.export.failures)"""

METRIC_LLM_COLLECTOR_EXPORT_FAILURES_UNIT: Final = "{attempt}"
"""Unit of llm.collector.export.failures. (registry: semconv/registry.yaml#metric.llm.collector.export.failures)"""
