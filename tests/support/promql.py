"""Checks PromQL queries (e.g. of the generated dashboards) against the metrics the code
registers.

``selectors(expr)`` finds the metric selectors of a query with a small tokenizer:
it skips strings, range and subquery brackets, Grafana variables, numbers and
durations, keywords (``by``, ``without``, ``on``, ``offset``…) with their label
lists, and function and aggregation calls; what is left are metric names, each
with the label names its ``{…}`` matchers use.

``exposed_series(registry)`` lists the series names a registry exposes (counters
as ``<name>_total``, histograms as ``_bucket``/``_sum``/``_count``…) with their
label names, and ``problems(expr, series)`` says what a query gets wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.registry import CollectorRegistry

#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
#: ``by (…)``, ``on (…)``…: followed by a list of label names, not a selector.
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _GROUPING | {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[A-Za-z0-9_]*")
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|[A-Za-z0-9_]+)")
_MATCHER = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"
    r"(\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`[^`]*`)\s*(,|$)"
)


class PromQLSyntaxError(ValueError):
    """The expression is not something this checker can read (unbalanced, bad matcher)."""


@dataclass(frozen=True)
class Selector:
    """A metric name in a query and the label names its matchers use."""

    metric: str
    labels: frozenset[str] = frozenset()


def _skip_string(expr: str, start: int) -> int:
    quote = expr[start]
    i = start + 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise PromQLSyntaxError(f"unterminated string at {start} in {expr!r}")


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """The index just past the bracket matching ``expr[start]`` (strings skipped)."""
    depth = 0
    i = start
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise PromQLSyntaxError(f"unbalanced {opening!r} at {start} in {expr!r}")


def _check_balanced(expr: str) -> None:
    """Every (, [ and { closes, in order (strings skipped)."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char in "([{":
            stack.append((char, i))
        elif char in pairs:
            if not stack or stack[-1][0] != pairs[char]:
                raise PromQLSyntaxError(f"unbalanced {char!r} at {i} in {expr!r}")
            stack.pop()
        i += 1
    if stack:
        char, at = stack[-1]
        raise PromQLSyntaxError(f"unbalanced {char!r} at {at} in {expr!r}")


def _matcher_labels(body: str) -> frozenset[str]:
    """Label names of ``a="x", b=~"y"`` (the inside of ``{…}``)."""
    labels: set[str] = set()
    position = 0
    body = body.strip()
    while position < len(body):
        match = _MATCHER.match(body, position)
        if match is None:
            raise PromQLSyntaxError(f"cannot read label matchers {{{body}}}")
        labels.add(match.group(1))
        position = match.end()
    return frozenset(labels)


def _next_significant(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of ``expr``, in order (``PromQLSyntaxError`` if unreadable)."""
    _check_balanced(expr)
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "#":
            newline = expr.find("\n", i)
            i = len(expr) if newline < 0 else newline
        elif char == "$":
            variable = _VARIABLE.match(expr, i)
            if variable is None:
                raise PromQLSyntaxError(f"stray '$' at {i} in {expr!r}")
            i = variable.end()
        elif char == "[":
            i = _closing(expr, i, "[", "]")
        elif char == "{":
            # A selector without a name ({__name__="…"}): only its matchers.
            end = _closing(expr, i, "{", "}")
            _matcher_labels(expr[i + 1 : end - 1])
            i = end
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            number = _NUMBER.match(expr, i)
            assert number is not None
            i = number.end()
        elif identifier := _IDENTIFIER.match(expr, i):
            name = identifier.group()
            i = identifier.end()
            after = _next_significant(expr, i)
            following = expr[after : after + 1]
            if name.lower() in _GROUPING and following == "(":
                i = _closing(expr, after, "(", ")")  # a label list
            elif name.lower() in _KEYWORDS or following == "(":
                pass  # an operator keyword, or a function / aggregation call
            elif name in _AGGREGATIONS and _IDENTIFIER.match(expr, after) is not None:
                pass  # `sum by (…) (…)`: the grouping comes before the call
            else:
                labels: frozenset[str] = frozenset()
                if following == "{":
                    end = _closing(expr, after, "{", "}")
                    labels = _matcher_labels(expr[after + 1 : end - 1])
                    i = end
                found.append(Selector(name, labels))
        else:
            i += 1  # operators, parentheses, commas
    return found


def metric_names(expr: str) -> set[str]:
    """Every metric name ``expr`` reads."""
    return {selector.metric for selector in selectors(expr)}


def exposed_series(registry: CollectorRegistry) -> dict[str, frozenset[str] | None]:
    """Every series name ``registry`` exposes, with its label names (``None``: unknown).

    Counters expose ``<name>_total``, histograms ``_bucket`` (with ``le``), ``_sum``
    and ``_count``, summaries ``<name>``, ``_sum`` and ``_count``. Label names come
    from the metric objects (also before any sample exists) or, for custom
    collectors, from the families they yield.
    """
    declared: dict[str, frozenset[str]] = {}
    # prometheus_client keeps no public index of its collectors' label names.
    for collector in list(registry._collector_to_names):
        names = getattr(collector, "_labelnames", None)
        if names is not None:
            for series in registry._collector_to_names[collector]:
                declared[series] = frozenset(names)
    series: dict[str, frozenset[str] | None] = {}
    for family in registry.collect():
        base = family.name
        names_of = {
            "counter": [f"{base}_total"],
            "histogram": [f"{base}_bucket", f"{base}_sum", f"{base}_count"],
            "gaugehistogram": [f"{base}_bucket", f"{base}_gsum", f"{base}_gcount"],
            "summary": [base, f"{base}_sum", f"{base}_count"],
            "info": [f"{base}_info"],
        }.get(family.type, [base])
        # Custom collectors' families (e.g. GaugeMetricFamily) keep their label names.
        family_labels = getattr(family, "_labelnames", None)
        for name in names_of:
            labels = declared.get(name, declared.get(base))
            if labels is None and family_labels is not None:
                labels = frozenset(family_labels)
            if labels is not None:
                if name.endswith("_bucket"):
                    labels |= {"le"}
                elif family.type == "summary" and name == base:
                    labels |= {"quantile"}
            series[name] = labels
    return series


def problems(expr: str, series: Mapping[str, frozenset[str] | None]) -> list[str]:
    """What ``expr`` gets wrong: unknown metric names, unknown matcher labels."""
    try:
        found = selectors(expr)
    except PromQLSyntaxError as exc:
        return [str(exc)]
    if not found:
        return [f"no metric in {expr!r}"]
    wrong: list[str] = []
    for selector in found:
        if selector.metric not in series:
            wrong.append(f"unknown metric {selector.metric!r}")
            continue
        known = series[selector.metric]
        if known is not None:
            unknown = selector.labels - known - TARGET_LABELS
            if unknown:
                wrong.append(f"{selector.metric} has no label {', '.join(sorted(unknown))}")
    return wrong
