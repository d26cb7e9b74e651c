"""Observability files derived from the catalog, the AsyncAPI topics and the sagas.

Emits, byte for byte deterministic:

- ``infrastructure/observability/grafana/dashboards/*.json``: the dashboards of
  ``generator.emit.dashboards`` (JSON with sorted keys);
- ``infrastructure/observability/grafana/provisioning/…``: the Prometheus data
  source and the dashboards provider, mounted by docker compose's Grafana;
- ``infrastructure/local/prometheus.yml``: the scrape config of the docker-less
  stack (every service and the gateway on 127.0.0.1), for ``make prometheus``.
"""

from __future__ import annotations

from typing import Any

from generator.catalog import Catalog
from generator.emit import Output, header
from generator.emit.dashboards import kafka_outbox, platform_overview, saga_health, services_red
from generator.emit.infra import (
    GRAFANA_DASHBOARDS,
    GRAFANA_DASHBOARDS_CONTAINER_DIR,
    GRAFANA_DATASOURCE_UID,
    GRAFANA_PROVISIONING_DASHBOARDS,
    GRAFANA_PROVISIONING_DATASOURCES,
    KONG_STATUS_PORT,
    PROMETHEUS_PORT,
    _comment,
    _Flow,
    _sources,
    _topics,
    _yaml,
    grafana_dashboard_path,
)
from generator.specset import SpecSet

LOCAL_PROMETHEUS_YML = "infrastructure/local/prometheus.yml"
#: Where every process of the docker-less stack listens.
LOCAL_HOST = "127.0.0.1"
#: Also the data source's ``timeInterval``: Grafana's $__rate_interval assumes it.
SCRAPE_INTERVAL = "15s"


def _datasources(catalog: Catalog, banner: str) -> str:
    prometheus = catalog.infrastructure.prometheus
    config = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": GRAFANA_DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": f"http://prometheus:{PROMETHEUS_PORT}",
                "isDefault": True,
                "editable": False,
                # Grafana's $__rate_interval assumes this scrape interval.
                "jsonData": {"timeInterval": SCRAPE_INTERVAL},
            }
        ],
    }
    note = _comment(
        "Grafana data source (docker compose): the compose Prometheus, published on"
        f" :{prometheus.port}."
    )
    return banner + note + _yaml(config)


def _providers(banner: str) -> str:
    config = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "microcommerce",
                "orgId": 1,
                "folder": "MicroCommerce",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": GRAFANA_DASHBOARDS_CONTAINER_DIR},
            }
        ],
    }
    note = _comment(
        "Grafana dashboards provider (docker compose): the generated dashboards, read-only\n"
        "(change the generator, not the dashboard, then `make generate`)."
    )
    return banner + note + _yaml(config)


def _local_prometheus(catalog: Catalog, banner: str) -> str:
    def job(name: str, port: int) -> dict[str, Any]:
        return {
            "job_name": name,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": _Flow([f"{LOCAL_HOST}:{port}"])}],
        }

    jobs = [job(s.name, s.http_port) for s in catalog.services.values()]
    # Same job name as in docker compose, so dashboards read both alike.
    jobs.append(job("kong", KONG_STATUS_PORT))
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": jobs,
    }
    note = _comment(
        "Prometheus for the docker-less stack (`make prometheus`): every service and the\n"
        f"gateway's status listener on {LOCAL_HOST}, with the job names of docker compose."
    )
    return banner + note + _yaml(config)


# --------------------------------------------------------------------------- entry point


def emit_observability(specset: SpecSet, out: Output) -> None:
    """Add the Grafana dashboards and provisioning and the local Prometheus config."""
    catalog = specset.catalog
    if catalog is None:
        raise ValueError("emit_observability needs the validated catalog (specset.catalog)")
    topics = _topics(specset, catalog)
    sagas = sorted(specset.sagas, key=lambda saga: saga.saga)
    catalog_only = header(_sources(specset))
    with_topics = header(_sources(specset, topics))
    with_sagas = header([*_sources(specset), *(doc.relpath for doc in specset.saga_docs)])
    boards = {
        "platform-overview": (platform_overview(catalog), catalog_only),
        "saga-health": (saga_health(catalog, sagas), with_sagas),
        "kafka-outbox": (kafka_outbox(catalog, topics), with_topics),
        "service-red": (services_red(catalog), catalog_only),
    }
    if set(boards) != set(GRAFANA_DASHBOARDS):
        raise AssertionError("the dashboards and docker compose's Grafana mounts disagree")
    for name in GRAFANA_DASHBOARDS:
        board, banner = boards[name]
        out.add(grafana_dashboard_path(name), board.json(banner))
    out.add(GRAFANA_PROVISIONING_DATASOURCES, _datasources(catalog, catalog_only))
    out.add(GRAFANA_PROVISIONING_DASHBOARDS, _providers(catalog_only))
    out.add(LOCAL_PROMETHEUS_YML, _local_prometheus(catalog, catalog_only))
