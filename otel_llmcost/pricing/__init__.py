"""Pricing core: catalog, model matching and cost arithmetic. Pure: no OpenTelemetry import."""

from .catalog import Catalog, CatalogError, ModelEntry, Prices, catalog_dir, default_catalog, load_catalog
from .compute import (
    STATUS_ESTIMATED,
    STATUS_INVALID,
    STATUS_NO_USAGE,
    STATUS_PRICED,
    STATUS_PROVIDER_REPORTED,
    STATUS_UNPRICED,
    Cost,
    Usage,
    compute_cost,
)
from .extras import PriceOptions
from .matching import Match, Matcher
from .pricer import MAX_TOKENS, Pricer, default_pricer, usage_problem
from .providers import canonical_provider, provider_from_address, region_from_address, semconv_provider_name

__all__ = [
    "MAX_TOKENS",
    "STATUS_ESTIMATED",
    "STATUS_INVALID",
    "STATUS_NO_USAGE",
    "STATUS_PRICED",
    "STATUS_PROVIDER_REPORTED",
    "STATUS_UNPRICED",
    "Catalog",
    "CatalogError",
    "Cost",
    "Match",
    "Matcher",
    "ModelEntry",
    "PriceOptions",
    "Prices",
    "Pricer",
    "Usage",
    "canonical_provider",
    "catalog_dir",
    "compute_cost",
    "default_catalog",
    "default_pricer",
    "load_catalog",
    "provider_from_address",
    "region_from_address",
    "semconv_provider_name",
    "usage_problem",
]
