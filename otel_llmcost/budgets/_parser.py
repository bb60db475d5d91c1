"""The budgets-file parser: walks the composed YAML node tree, so every value keeps its line.

Everything it refuses becomes a :class:`~otel_llmcost.budgets.spec.BudgetsError` naming the file,
the line and the dotted key; the schema itself is documented in :mod:`otel_llmcost.budgets.spec`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import yaml

from ..config import OTEL_LLMCOST_DIMENSIONS, ConfigError, env_list
from ..metrics import Recorder
from .spec import (
    _NAME,
    _NO_VALUE,
    ACTIONS,
    BUILTIN_LABELS,
    DEFAULT_FOR,
    DEFAULT_THRESHOLDS,
    MIN_ALERT_WINDOW_S,
    MIN_BUDGET_WINDOW_S,
    PER_USER,
    SEVERITIES,
    Action,
    Budget,
    BudgetsError,
    BudgetsFile,
    ErrorRateAlert,
    RateLimit,
    Severity,
    Threshold,
    Window,
    parse_duration_s,
    parse_rate_limit_policy,
    parse_window,
)

__all__ = ["Parser"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_DEFAULT_SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_TOP_KEYS = ("dimensions", "budgets", "alerts", "rate_limits")
_BUDGET_KEYS = ("name", "window", "limit_usd", "thresholds", "filter", "per", "for", "action", "title")
_ALERT_KEYS = ("name", "error_rate_above", "window", "filter", "for", "severity", "min_requests", "title")
_RATE_KEYS = ("name", "policy", "action", "filter")
_THRESHOLD_KEYS = ("at", "severity")
_HINTS = {
    "scope": "a budget is global unless it has 'filter:' (label: value) or 'per: user'",
    "limit": "the limit is 'limit_usd'",
    "threshold": "the key is 'thresholds' (a list)",
}


_Node = yaml.Node


class Parser:
    """Parses one budgets file (see :func:`~otel_llmcost.budgets.spec.parse_budgets`)."""

    def __init__(self, source: str, environ: Mapping[str, str] | None) -> None:
        self.source = source
        self.environ = environ
        self.loader: yaml.SafeLoader | None = None

    # errors and plain values

    def error(self, node: _Node | None, key: str, problem: str, value: object = _NO_VALUE) -> BudgetsError:
        line = node.start_mark.line + 1 if node is not None else 0
        return BudgetsError(self.source, line, key, value, problem)

    def value(self, node: _Node) -> Any:
        assert self.loader is not None  # set by parse()
        return self.loader.construct_object(node, deep=True)  # type: ignore[no-untyped-call]

    def mapping(
        self, node: _Node, key: str, allowed: Sequence[str], unknown: Any = None
    ) -> dict[str, tuple[_Node, _Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, "expected a mapping (key: value lines)", self.value(node))
        written: set[str] = set()
        for knode, _ in node.value:  # a key written twice: YAML would silently keep the last
            if knode.tag == _MERGE_TAG:
                continue
            name = self.value(knode)
            if not isinstance(name, str):
                raise self.error(knode, key, "keys are words", name)
            if name in written:
                raise self.error(knode, f"{key}.{name}" if key else name, "this key is given twice in the same mapping")
            written.add(name)
        assert self.loader is not None
        # YAML merge keys (<<: *anchor): merged pairs come first, so the keys written here win
        self.loader.flatten_mapping(node)  # type: ignore[no-untyped-call]
        out: dict[str, tuple[_Node, _Node]] = {}
        for knode, vnode in node.value:
            name = self.value(knode)
            path = f"{key}.{name}" if key else name
            if name not in allowed:
                raise self.error(knode, path, (unknown or _unknown_key)(name, allowed))
            out[name] = (knode, vnode)
        return out

    def sequence(self, node: _Node, key: str) -> list[_Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, "expected a list ('- item' lines or [a, b])", self.value(node))
        return list(node.value)

    def text(self, node: _Node, key: str, *, what: str = "text") -> str:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or value is None or isinstance(value, float):
            shown = self.value(node)
            raise self.error(
                node, key, f"expected {what} (quote it if YAML reads it as yes/no, null or a number)", shown
            )
        if isinstance(value, int):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, key, f"expected {what}", value)
        return value.strip()

    def choice(
        self, entries: dict[str, tuple[Any, _Node]], name: str, key: str, allowed: tuple[str, ...]
    ) -> str | None:
        """Read the optional entry *name*, which must be one of *allowed*; ``None`` when absent."""
        if name not in entries:
            return None
        node = entries[name][1]
        value = self.text(node, f"{key}.{name}")
        if value not in allowed:
            words = f"{', '.join(allowed[:-1])} or {allowed[-1]}"
            raise self.error(node, f"{key}.{name}", f"expected {words}", value)
        return value

    def number(self, node: _Node, key: str) -> Decimal:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.error(node, key, "expected a number", self.value(node))
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.error(node, key, "expected a number", value) from None
        if not number.is_finite():
            raise self.error(node, key, "expected a finite number", value)
        return number

    def duration(self, node: _Node, key: str) -> tuple[str, float]:
        raw = self.text(node, key, what="a duration such as 30s, 5m or 1h")
        seconds = parse_duration_s(raw)
        if seconds is None:
            raise self.error(node, key, "expected a duration such as 0s, 30s, 5m or 1h", raw)
        return raw, seconds

    def window(self, node: _Node, key: str, *, minimum_s: int, month_ok: bool) -> Window:
        raw = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(raw, int) and not isinstance(raw, bool):
            raise self.error(node, key, "a window needs a unit: 30m, 1h, 1d, 7d", raw)
        text = self.text(node, key, what="a window")
        window = parse_window(text)
        if window is None:
            hint = " (the calendar month is 'month')" if text.lower() in ("1mo", "1m", "monthly", "1month") else ""
            options = "1h, 1d, 7d, 30d, month" if month_ok else "5m, 15m, 1h"
            raise self.error(node, key, f"a window is a number and m/h/d/w, e.g. {options}{hint}", text)
        if window.calendar_month and not month_ok:
            raise self.error(node, key, "an error-rate window is rolling (e.g. 15m); 'month' is for budgets", text)
        if window.seconds is not None and window.seconds < minimum_s:
            raise self.error(
                node,
                key,
                f"a window shorter than {minimum_s // 60}m holds too few scrapes for increase() to see spend",
                text,
            )
        return window

    def name(self, node: _Node, key: str) -> str:
        name = self.text(node, key, what="a name")
        if not _NAME.match(name):
            raise self.error(
                node, key, "a name is letters, digits, '_', '.', '-' (starting with a letter or digit)", name
            )
        return name

    # the document

    def parse(self, text: str) -> BudgetsFile:
        self.loader = yaml.SafeLoader(text)
        try:
            root = self.loader.get_single_node()  # type: ignore[no-untyped-call]
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            raise BudgetsError(self.source, line, "yaml", _NO_VALUE, f"not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise BudgetsError(self.source, 0, "yaml", _NO_VALUE, f"not valid YAML: {exc}") from None
        try:
            return self._document(root)
        except yaml.MarkedYAMLError as exc:  # e.g. a bad merge key, met while constructing values
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            raise BudgetsError(self.source, line, "yaml", _NO_VALUE, f"not valid YAML: {exc.problem}") from None
        finally:
            self.loader.dispose()  # type: ignore[no-untyped-call]

    def _document(self, root: _Node | None) -> BudgetsFile:
        if root is None:
            raise BudgetsError(self.source, 0, "file", _NO_VALUE, "the budgets file is empty")
        top = self.mapping(root, "", _TOP_KEYS)
        if not top:
            raise self.error(root, "file", "the budgets file has none of " + ", ".join(_TOP_KEYS))
        dimensions = self._dimensions(top.get("dimensions"))
        labels = (*BUILTIN_LABELS, *dimensions)
        budgets = tuple(self._items(top.get("budgets"), "budgets", lambda n, k: self._budget(n, k, labels)))
        alerts = tuple(self._items(top.get("alerts"), "alerts", lambda n, k: self._alert(n, k, labels)))
        rates = tuple(self._items(top.get("rate_limits"), "rate_limits", lambda n, k: self._rate(n, k, dimensions)))
        for section, items in (("budgets", budgets), ("alerts", alerts), ("rate_limits", rates)):
            seen: dict[str, int] = {}
            for index, item in enumerate(items):
                if item.name in seen:
                    raise BudgetsError(
                        self.source,
                        item.line,
                        f"{section}[{index}].name",
                        item.name,
                        f"a second {section[:-1].replace('_', '-')} with this name (the first is "
                        f"{section}[{seen[item.name]}]); names must be unique",
                    )
                seen[item.name] = index
        return BudgetsFile(self.source, dimensions, budgets, alerts, rates)

    def _items(self, entry: tuple[_Node, _Node] | None, key: str, parse: Any) -> Iterator[Any]:
        if entry is None:
            return
        _, vnode = entry
        if isinstance(vnode, yaml.ScalarNode) and self.value(vnode) is None:
            return  # "budgets:" with nothing under it
        for index, node in enumerate(self.sequence(vnode, key)):
            yield parse(node, f"{key}[{index}]")

    def _dimensions(self, entry: tuple[_Node, _Node] | None) -> tuple[str, ...]:
        if entry is None:
            return env_list(OTEL_LLMCOST_DIMENSIONS, self.environ)
        _, node = entry
        if isinstance(node, yaml.ScalarNode):
            raw = self.value(node)
            if raw is None:
                return ()
            dims = tuple(d.strip() for d in self.text(node, "dimensions").split(",") if d.strip())
        else:
            dims = tuple(self.text(n, f"dimensions[{i}]") for i, n in enumerate(self.sequence(node, "dimensions")))
        try:
            Recorder(dims)  # the same rules as the recorder: label syntax, no ids, no reserved names
        except ConfigError as exc:
            raise self.error(node, "dimensions", str(exc)) from None
        return dims

    def _filter(self, node: _Node, key: str, labels: Sequence[str]) -> dict[str, tuple[str, ...]]:
        entries = self.mapping(node, key, labels, _not_allow_listed)
        out: dict[str, tuple[str, ...]] = {}
        for label, (_, vnode) in entries.items():
            if isinstance(vnode, yaml.SequenceNode):
                values = tuple(self.text(n, f"{key}.{label}[{i}]") for i, n in enumerate(vnode.value))
                if not values:
                    raise self.error(vnode, f"{key}.{label}", "an empty list matches nothing")
            else:
                values = (self.text(vnode, f"{key}.{label}"),)
            out[label] = values
        if not out:
            raise self.error(node, key, "an empty filter: omit 'filter' for a global budget")
        return out

    def _thresholds(self, node: _Node, key: str) -> tuple[Threshold, ...]:
        raw: list[tuple[float, Severity | None, _Node, str]] = []
        items = self.sequence(node, key)
        if not items:
            raise self.error(node, key, "an empty list: omit 'thresholds' for the default [0.5, 0.8, 0.95]")
        for index, item in enumerate(items):
            ikey = f"{key}[{index}]"
            severity: Severity | None = None
            at_node = item
            if isinstance(item, yaml.MappingNode):
                entries = self.mapping(item, ikey, _THRESHOLD_KEYS)
                if "at" not in entries:
                    raise self.error(item, f"{ikey}.at", "missing: the fraction of the limit, e.g. at: 0.9")
                at_node = entries["at"][1]
                ikey_at = f"{ikey}.at"
                sev = self.choice(entries, "severity", ikey, SEVERITIES)
                if sev is not None:
                    severity = sev  # type: ignore[assignment]
            else:
                ikey_at = ikey
            at = self.number(at_node, ikey_at)
            if not Decimal(0) < at <= Decimal(1):
                hint = " (write 80% as 0.8)" if at > 1 else ""
                raise self.error(at_node, ikey_at, f"a threshold is a fraction of the limit, 0 < t <= 1{hint}", at)
            raw.append((float(at), severity, at_node, ikey_at))
        seen: set[float] = set()
        for at_f, _, at_node, ikey_at in raw:
            if at_f in seen:
                raise self.error(at_node, ikey_at, "this threshold is listed twice", at_f)
            seen.add(at_f)
        ranked = sorted(raw, key=lambda r: r[0])
        n = len(ranked)
        out: list[Threshold] = []
        for rank, (at_f, severity, _, _) in enumerate(ranked):
            from_top = n - 1 - rank
            default: Severity = "critical" if from_top == 0 else "warning" if from_top == 1 else "info"
            out.append(Threshold(at_f, severity or default))
        return tuple(out)

    def _for(self, entries: dict[str, tuple[_Node, _Node]], key: str, window: Window) -> str:
        if "for" not in entries:
            length = window.min_seconds
            return DEFAULT_FOR if length >= 1800 else "1m" if length > 60 else "0s"
        node = entries["for"][1]
        raw, seconds = self.duration(node, f"{key}.for")
        if seconds >= window.min_seconds:
            raise self.error(
                node,
                f"{key}.for",
                f"'for' must be shorter than the window ({window.text}), or the alert never fires",
                raw,
            )
        return raw

    def _budget(self, node: _Node, key: str, labels: Sequence[str]) -> Budget:
        e = self.mapping(node, key, _BUDGET_KEYS)
        for required in ("name", "window", "limit_usd"):
            if required not in e:
                raise self.error(node, f"{key}.{required}", "missing (every budget has name, window and limit_usd)")
        name = self.name(e["name"][1], f"{key}.name")
        window = self.window(e["window"][1], f"{key}.window", minimum_s=MIN_BUDGET_WINDOW_S, month_ok=True)
        lnode = e["limit_usd"][1]
        limit = self.number(lnode, f"{key}.limit_usd")
        if limit <= 0:
            raise self.error(lnode, f"{key}.limit_usd", "a limit is more than $0", limit)
        thresholds = (
            self._thresholds(e["thresholds"][1], f"{key}.thresholds")
            if "thresholds" in e
            else tuple(Threshold(t, s) for t, s in zip(DEFAULT_THRESHOLDS, _DEFAULT_SEVERITIES, strict=True))
        )
        flt = self._filter(e["filter"][1], f"{key}.filter", labels) if "filter" in e else {}
        per: Literal["user"] | None = None
        if "per" in e:
            pnode = e["per"][1]
            p = self.text(pnode, f"{key}.per")
            if p != PER_USER:
                raise self.error(
                    pnode, f"{key}.per", "only 'per: user' is supported; use 'filter:' to budget one label value", p
                )
            per = PER_USER
        action: Action | None = self.choice(e, "action", key, ACTIONS)  # type: ignore[assignment]
        title = self.text(e["title"][1], f"{key}.title") if "title" in e else ""
        return Budget(
            name=name,
            window=window,
            limit_usd=limit,
            thresholds=thresholds,
            filter=flt,
            per=per,
            for_=self._for(e, key, window),
            action=action,
            title=title,
            line=e["name"][1].start_mark.line + 1,
        )

    def _alert(self, node: _Node, key: str, labels: Sequence[str]) -> ErrorRateAlert:
        e = self.mapping(node, key, _ALERT_KEYS)
        for required in ("name", "error_rate_above", "window"):
            if required not in e:
                raise self.error(
                    node, f"{key}.{required}", "missing (every alert has name, error_rate_above and window)"
                )
        name = self.name(e["name"][1], f"{key}.name")
        rnode = e["error_rate_above"][1]
        rate = self.number(rnode, f"{key}.error_rate_above")
        if not Decimal(0) <= rate < Decimal(1):
            hint = " (write 5% as 0.05)" if rate >= 1 else ""
            raise self.error(rnode, f"{key}.error_rate_above", f"an error rate is a fraction, 0 <= r < 1{hint}", rate)
        window = self.window(e["window"][1], f"{key}.window", minimum_s=MIN_ALERT_WINDOW_S, month_ok=False)
        severity: Severity = self.choice(e, "severity", key, SEVERITIES) or "warning"  # type: ignore[assignment]
        min_requests = 0
        if "min_requests" in e:
            mnode = e["min_requests"][1]
            m = self.number(mnode, f"{key}.min_requests")
            if m < 0 or m != m.to_integral_value():
                raise self.error(mnode, f"{key}.min_requests", "expected a whole number >= 0", m)
            min_requests = int(m)
        return ErrorRateAlert(
            name=name,
            error_rate_above=float(rate),
            window=window,
            filter=self._filter(e["filter"][1], f"{key}.filter", labels) if "filter" in e else {},
            for_=self._for(e, key, window),
            severity=severity,
            min_requests=min_requests,
            title=self.text(e["title"][1], f"{key}.title") if "title" in e else "",
            line=e["name"][1].start_mark.line + 1,
        )

    def _rate(self, node: _Node, key: str, dimensions: Sequence[str]) -> RateLimit:
        pnode: _Node
        e: dict[str, tuple[_Node, _Node]]
        if isinstance(node, yaml.ScalarNode):
            pnode, e = node, {}
            name = None
            pkey = key
        else:
            e = self.mapping(node, key, _RATE_KEYS)
            if "policy" not in e:
                raise self.error(node, f"{key}.policy", 'missing: e.g. policy: "100;w=60;u=request;s=user"')
            pnode = e["policy"][1]
            pkey = f"{key}.policy"
            name = self.name(e["name"][1], f"{key}.name") if "name" in e else None
        policy = self.text(pnode, pkey, what="a policy such as 100;w=60;u=request;s=user")
        try:
            quota, window_s, unit, scope = parse_rate_limit_policy(policy)
        except ValueError as exc:
            raise self.error(pnode, pkey, f"malformed rate-limit policy: {exc}", policy) from None
        if scope is not None and scope != PER_USER and scope not in dimensions:
            allowed = ", ".join((PER_USER, *dimensions))
            raise self.error(
                pnode, pkey, f"s={scope}: the scope is one of {allowed} (add it to 'dimensions' first)", policy
            )
        action: Action = self.choice(e, "action", key, ACTIONS) or "raise"  # type: ignore[assignment]
        labels = (*BUILTIN_LABELS, *dimensions)
        return RateLimit(
            name=name or policy,
            quota=quota,
            window_s=window_s,
            unit=unit,
            scope=scope,
            policy=policy,
            action=action,
            filter=self._filter(e["filter"][1], f"{key}.filter", labels) if "filter" in e else {},
            line=node.start_mark.line + 1,
        )


def _not_allow_listed(name: str, allowed: Sequence[str]) -> str:
    return (
        f"'{name}' is not a metric label, so this filter could never match: a filter uses "
        f"{', '.join(allowed)} (to filter on a property, add it to 'dimensions' and to the "
        f"application's {OTEL_LLMCOST_DIMENSIONS.name})"
    )


def _unknown_key(name: str, allowed: Sequence[str]) -> str:
    if name in _HINTS:
        return f"unknown key '{name}': {_HINTS[name]}"
    close = difflib.get_close_matches(name, list(allowed), n=1)
    suggestion = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{name}' (allowed: {', '.join(allowed)}){suggestion}"
