"""A small builder of Grafana dashboards (JSON model, schema 39) and their PromQL.

Panels are laid out left to right, top to bottom, on Grafana's 24-column grid;
ids follow the order panels are added, so the same calls give the same bytes.
Every panel reads the provisioned Prometheus data source (uid ``prometheus``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.emit.infra import GRAFANA_DATASOURCE_UID

DATASOURCE = {"type": "prometheus", "uid": GRAFANA_DATASOURCE_UID}
#: Grafana's own rate window: at least four scrape intervals, so rates never go blank.
RATE = "$__rate_interval"
GRID_WIDTH = 24
PANEL_HEIGHT = 8
#: ``circuit_breaker_state`` values (see handwritten/runtime/breaker_metrics.py).
BREAKER_STATES = (("0", "closed", "green"), ("1", "open", "red"), ("2", "half-open", "orange"))
SCHEMA_VERSION = 39
#: Every generated dashboard carries these; their links list the others by tag.
TAGS = ("generated", "microcommerce")


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and the legend of its series."""

    expr: str
    legend: str = ""


def _target(query: Query, ref: int) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": True,
        "refId": chr(ord("A") + ref),
    }


@dataclass
class Dashboard:
    """Panels laid out left to right, top to bottom, on Grafana's 24-column grid."""

    uid: str
    title: str
    description: str
    panels: list[dict[str, Any]] = field(default_factory=list)
    # The cursor: where the next panel goes, and the height of the current line.
    _x: int = field(default=0, init=False, repr=False)
    _y: int = field(default=0, init=False, repr=False)
    _row_height: int = field(default=0, init=False, repr=False)

    def _place(self, width: int, height: int) -> dict[str, int]:
        if self._x + width > GRID_WIDTH:
            self._newline()
        position = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._row_height = max(self._row_height, height)
        return position

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def row(self, title: str) -> None:
        """A full-width row header; the panels after it belong to it."""
        self._newline()
        self.panels.append(
            {
                "collapsed": False,
                "gridPos": self._place(GRID_WIDTH, 1),
                "id": len(self.panels) + 1,
                "panels": [],
                "title": title,
                "type": "row",
            }
        )
        self._newline()

    def graph(
        self,
        title: str,
        queries: Sequence[Query],
        *,
        unit: str = "short",
        description: str = "",
        width: int = 8,
        stack: bool = False,
    ) -> None:
        """A time series panel."""
        custom: dict[str, Any] = {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never"}
        if stack:
            custom["stacking"] = {"group": "A", "mode": "normal"}
        self._add(
            "timeseries",
            title,
            queries,
            description=description,
            width=width,
            defaults={"custom": custom, "unit": unit},
            options={
                "legend": {"calcs": [], "displayMode": "list", "placement": "bottom"},
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
        )

    def states(self, title: str, queries: Sequence[Query], *, description: str = "") -> None:
        """A state timeline of circuit breakers (0 closed, 1 open, 2 half-open)."""
        self._add(
            "state-timeline",
            title,
            queries,
            description=description,
            width=GRID_WIDTH // 2,
            defaults={
                "color": {"mode": "thresholds"},
                "mappings": [
                    {
                        "options": {
                            value: {"color": color, "index": index, "text": text}
                            for index, (value, text, color) in enumerate(BREAKER_STATES)
                        },
                        "type": "value",
                    }
                ],
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "red", "value": 1},
                        {"color": "orange", "value": 2},
                    ],
                },
            },
            options={"mergeValues": True, "showValue": "auto"},
        )

    def text(self, title: str, markdown: str) -> None:
        """A full-width Markdown panel (no query), as tall as its lines need."""
        height = min(max(PANEL_HEIGHT // 2, markdown.count("\n") + 3), 3 * PANEL_HEIGHT)
        self.panels.append(
            {
                "gridPos": self._place(GRID_WIDTH, height),
                "id": len(self.panels) + 1,
                "options": {"content": markdown, "mode": "markdown"},
                "title": title,
                "type": "text",
            }
        )

    def _add(
        self,
        kind: str,
        title: str,
        queries: Sequence[Query],
        *,
        description: str,
        width: int,
        defaults: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        self.panels.append(
            {
                "datasource": DATASOURCE,
                "description": description,
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "gridPos": self._place(width, PANEL_HEIGHT),
                "id": len(self.panels) + 1,
                "options": options,
                "targets": [_target(query, ref) for ref, query in enumerate(queries)],
                "title": title,
                "type": kind,
            }
        )

    def json(self, banner: str) -> str:
        """The dashboard's JSON model (sorted keys), ``banner`` in its ``$comment``."""
        model = {
            # JSON has no comments: the do-not-edit banner rides in a key Grafana ignores.
            "$comment": banner.removeprefix("# ").rstrip("\n"),
            "annotations": {"list": []},
            "description": self.description,
            "editable": False,
            "graphTooltip": 1,
            "id": None,
            "links": [
                {
                    "asDropdown": True,
                    "includeVars": False,
                    "keepTime": True,
                    "tags": ["microcommerce"],
                    "title": "MicroCommerce",
                    "type": "dashboards",
                }
            ],
            "panels": self.panels,
            "refresh": "10s",
            "schemaVersion": SCHEMA_VERSION,
            "tags": list(TAGS),
            "templating": {"list": []},
            "time": {"from": "now-1h", "to": "now"},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }
        return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- PromQL


def matchers(**labels: str) -> str:
    """Equality label matchers, in the order given: ``saga="x", step="y"``."""
    return ", ".join(f'{name}="{value}"' for name, value in labels.items())


def rate(metric: str, selector: str = "", by: str = "") -> str:
    """``sum by (by) (rate(metric{selector}[$__rate_interval]))``."""
    grouping = f" by ({by})" if by else ""
    braces = f"{{{selector}}}" if selector else ""
    return f"sum{grouping} (rate({metric}{braces}[{RATE}]))"


def quantile(q: float, histogram: str, selector: str = "", by: str = "") -> str:
    """The ``q`` quantile of a histogram (its ``_bucket`` series), grouped by ``by``."""
    grouping = ", ".join(["le", *([by] if by else [])])
    braces = f"{{{selector}}}" if selector else ""
    return (
        f"histogram_quantile({q}, sum by ({grouping}) (rate({histogram}_bucket{braces}[{RATE}])))"
    )


def ratio(metric: str, failing: str, selector: str = "", by: str = "") -> str:
    """The share of ``metric``'s rate whose samples match ``failing`` too; 0 (not "no
    data") while nothing fails, as long as there is traffic."""
    both = f"{selector}, {failing}" if selector else failing
    every = rate(metric, selector, by)
    return f"({rate(metric, both, by)} or {every} * 0) / {every}"


def latencies(histogram: str, selector: str, by: str = "", suffix: str = "") -> list[Query]:
    """p50, p95 and p99 of a histogram, one query each."""
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        Query(quantile(q, histogram, selector, by), f"{legend}p{round(q * 100)}{suffix}")
        for q in (0.5, 0.95, 0.99)
    ]
