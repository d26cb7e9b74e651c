"""The generated Grafana dashboards: provisionable, laid out, and every query reads
metrics the code really registers.

The registry is the one every service serves on ``/metrics``, after importing every
service's app module and the gateway (each registers its metrics at import), so a
dashboard that names a metric nobody exposes, or a label it does not have, fails.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.emit import Output
from generator.emit.infra import (
    GRAFANA_DASHBOARDS,
    GRAFANA_DASHBOARDS_CONTAINER_DIR,
    GRAFANA_PROVISIONING_DASHBOARDS,
    GRAFANA_PROVISIONING_DATASOURCES,
    emit_infrastructure,
    grafana_dashboard_path,
)
from generator.emit.observability import LOCAL_PROMETHEUS_YML, emit_observability
from generator.pipeline import load_and_check
from generator.specset import SpecSet
from tests.support.promql import exposed_series, problems

from .conftest import replace_in

ROOT = Path(__file__).resolve().parents[2]
PANEL_TYPES = {"row", "text", "timeseries", "state-timeline"}
QUERY_PANELS = PANEL_TYPES - {"row", "text"}
GRID_WIDTH = 24

Board = dict[str, Any]
Series = dict[str, frozenset[str] | None]


def _emit(specset: SpecSet) -> dict[str, str]:
    out = Output()
    emit_observability(specset, out)
    return out.files


def _boards(files: dict[str, str]) -> dict[str, Board]:
    return {name: json.loads(files[grafana_dashboard_path(name)]) for name in GRAFANA_DASHBOARDS}


@pytest.fixture(scope="module")
def specset() -> SpecSet:
    return load_and_check(ROOT)


@pytest.fixture(scope="module")
def files(specset: SpecSet) -> dict[str, str]:
    return _emit(specset)


@pytest.fixture(scope="module")
def boards(files: dict[str, str]) -> dict[str, Board]:
    return _boards(files)


@pytest.fixture(scope="module")
def series() -> Series:
    """Every series the processes of the platform can expose, with its labels."""
    from generated import catalog
    from handwritten.runtime.metrics import REGISTRY

    for name in catalog.SERVICES:
        importlib.import_module(f"handwritten.{name}.app")
    importlib.import_module("handwritten.gateway.app")
    return exposed_series(REGISTRY)


def query_panels(board: Board) -> list[Board]:
    return [panel for panel in board["panels"] if panel["type"] in QUERY_PANELS]


def dashboard_problems(board: Board, series: Series) -> list[str]:
    """Every query of ``board`` that reads a metric or label the code does not expose."""
    found = []
    for panel in query_panels(board):
        for target in panel["targets"]:
            for problem in problems(target["expr"], series):
                found.append(f"{board['uid']} / {panel['title']} / {target['refId']}: {problem}")
    return found


# ------------------------------------------------------------------ loading


def test_every_dashboard_has_what_provisioning_needs(boards: dict[str, Board]) -> None:
    assert set(boards) == set(GRAFANA_DASHBOARDS)
    uids = [board["uid"] for board in boards.values()]
    titles = [board["title"] for board in boards.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for board in boards.values():
        assert 0 < len(board["uid"]) <= 40  # Grafana's limit
        assert board["id"] is None  # Grafana assigns its own on import
        assert isinstance(board["schemaVersion"], int)
        assert board["title"] and board["panels"]
        assert "microcommerce" in board["tags"]
        assert "DO NOT EDIT" in board["$comment"]


def test_panels_have_unique_ids_and_valid_targets(boards: dict[str, Board]) -> None:
    for board in boards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids), board["uid"]
        assert all(isinstance(i, int) and i > 0 for i in ids)
        for panel in board["panels"]:
            assert panel["type"] in PANEL_TYPES, panel
            assert panel["title"], panel
        for panel in query_panels(board):
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            refs = [target["refId"] for target in panel["targets"]]
            assert refs and len(set(refs)) == len(refs), panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                assert isinstance(target["expr"], str) and target["expr"].strip()


def test_panels_fit_the_grid_without_overlapping(boards: dict[str, Board]) -> None:
    for board in boards.values():
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= GRID_WIDTH
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, f"{board['uid']}: {panel['title']} overlaps"
            taken |= cells


# ------------------------------------------------------------------ queries


def test_every_query_reads_metrics_the_code_registers(
    boards: dict[str, Board], series: Series
) -> None:
    found = [problem for board in boards.values() for problem in dashboard_problems(board, series)]
    assert found == []
    assert sum(len(query_panels(board)) for board in boards.values()) > 50


def test_the_check_fails_on_an_unknown_metric_or_label(
    boards: dict[str, Board], series: Series
) -> None:
    board = copy.deepcopy(boards["platform-overview"])
    target = query_panels(board)[0]["targets"][0]
    target["expr"] = target["expr"].replace("kong_http_requests_total", "kong_http_request_total")
    assert dashboard_problems(board, series) == [
        f"mc-platform-overview / {query_panels(board)[0]['title']} / A:"
        " unknown metric 'kong_http_request_total'"
    ]
    target["expr"] = 'sum(rate(http_requests_total{servise="orders"}[5m]))'
    assert dashboard_problems(board, series)[0].endswith("http_requests_total has no label servise")
    target["expr"] = "sum(rate(http_requests_total[5m])"
    assert "unbalanced" in dashboard_problems(board, series)[0]


def test_the_registry_covers_the_shared_families(series: Series) -> None:
    # The families issue 7 names, as Prometheus sees them (suffixes expanded).
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "grpc_server_handled_total",
        "grpc_client_handled_total",
        "grpc_client_handling_seconds_count",
        "consumer_lag_records",
        "consumer_handler_duration_seconds_bucket",
        "outbox_backlog_events",
        "outbox_oldest_unpublished_age_seconds",
        "saga_started_total",
        "saga_completed_total",
        "saga_compensated_total",
        "saga_failed_total",
        "saga_step_duration_seconds_bucket",
        "circuit_breaker_state",
        "circuit_breaker_transitions_total",
        "db_pool_connections",
        "db_pool_max_connections",
    ):
        assert name in series, name
    assert series["saga_compensated_total"] == {"saga", "reason"}
    assert series["db_pool_connections"] == {"service", "state"}


# ------------------------------------------------------------------ catalog


def _row_titles(board: Board) -> list[str]:
    return [panel["title"] for panel in board["panels"] if panel["type"] == "row"]


def test_dashboards_follow_the_catalog_and_the_sagas(
    boards: dict[str, Board], specset: SpecSet
) -> None:
    assert specset.catalog is not None
    services = specset.catalog.services.values()
    rows = _row_titles(boards["service-red"])
    assert rows == [f"{s.name} (:{s.http_port})" for s in services]
    kafka_rows = _row_titles(boards["kafka-outbox"])
    for service in services:
        if service.consumer_group:
            assert f"Consumer group {service.consumer_group} ({service.name})" in kafka_rows
    topics = next(p for p in boards["kafka-outbox"]["panels"] if p["type"] == "text")
    for topic in specset.catalog.topics():
        assert f"`{topic}`" in topics["options"]["content"]
    step_panels = {p["title"] for p in boards["saga-health"]["panels"]}
    for saga in specset.sagas:
        assert f"{saga.saga} (orchestrated by {saga.orchestrator})" in _row_titles(
            boards["saga-health"]
        )
        for step in saga.steps:
            assert f"Step {step.name} ({step.kind})" in step_panels


def test_a_new_service_gets_its_panels(shop: Path) -> None:
    before = _boards(_emit(load_and_check(shop)))
    replace_in(
        shop / "specs/services.yaml",
        "  stock:\n",
        "  billing:\n"
        "    description: Sends invoices.\n"
        "    http_port: 8203\n"
        "    database: billing\n"
        "    uses: [postgres]\n"
        "  stock:\n",
    )
    after = _boards(_emit(load_and_check(shop)))
    assert "billing (:8203)" not in _row_titles(before["service-red"])
    assert "billing (:8203)" in _row_titles(after["service-red"])
    red = after["service-red"]["panels"]
    billing = [
        p for p in red if any('service="billing"' in t["expr"] for t in p.get("targets", []))
    ]
    assert {p["title"] for p in billing} >= {
        "HTTP requests by route and status",
        "HTTP latency",
        "Database pool (billing)",
    }


# ------------------------------------------------------------------ provisioning


def test_grafana_provisioning_matches_compose(files: dict[str, str], specset: SpecSet) -> None:
    sources = yaml.safe_load(files[GRAFANA_PROVISIONING_DATASOURCES])["datasources"]
    assert [(s["uid"], s["type"], s["url"]) for s in sources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]
    (provider,) = yaml.safe_load(files[GRAFANA_PROVISIONING_DASHBOARDS])["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS_CONTAINER_DIR

    infra = Output()
    emit_infrastructure(specset, infra)
    grafana = yaml.safe_load(infra.files["docker-compose.yml"])["services"]["grafana"]
    mounts = {v.split(":")[0].removeprefix("./"): v.split(":")[1] for v in grafana["volumes"]}
    for name in GRAFANA_DASHBOARDS:
        assert mounts[grafana_dashboard_path(name)] == (
            f"{GRAFANA_DASHBOARDS_CONTAINER_DIR}/{name}.json"
        )
    assert mounts[GRAFANA_PROVISIONING_DATASOURCES].startswith("/etc/grafana/provisioning/")
    assert mounts[GRAFANA_PROVISIONING_DASHBOARDS].startswith("/etc/grafana/provisioning/")


def test_local_prometheus_scrapes_the_docker_less_stack(
    files: dict[str, str], specset: SpecSet
) -> None:
    assert specset.catalog is not None
    config = yaml.safe_load(files[LOCAL_PROMETHEUS_YML])
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    for service in specset.catalog.services.values():
        assert targets[service.name] == [f"127.0.0.1:{service.http_port}"]
    assert targets["kong"] == ["127.0.0.1:8100"]
    assert set(targets) == {*specset.catalog.services, "kong"}
