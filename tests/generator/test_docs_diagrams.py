"""Mermaid diagrams in docs/generated/: complete, derived from the specs, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

from generator.emit import REPO_ROOT, Output
from generator.emit.docs import emit_docs
from generator.pipeline import load_and_check

from .conftest import FIXTURE, replace_in

PAGES = ("service-map", "topic-flow", "sagas", "data-ownership", "saga-dsl-schema")


def diagrams(root: Path) -> dict[str, str]:
    """The four pages generated from the specs under ``root``, by page name."""
    out = Output()
    emit_docs(load_and_check(root), out)
    assert sorted(out.files) == sorted(f"docs/generated/{page}.md" for page in PAGES)
    return {Path(path).stem: text for path, text in out.files.items()}


def test_the_project_diagrams_name_every_service_topic_and_saga_step() -> None:
    specset = load_and_check(REPO_ROOT)
    assert specset.catalog is not None
    pages = diagrams(REPO_ROOT)
    for name, service in specset.catalog.services.items():
        assert f'{name}["{name}<br/>HTTP :{service.http_port}' in pages["service-map"]
        assert f"| {name} |" in pages["data-ownership"]
        if service.database:
            assert f"PostgreSQL: {service.database}" in pages["data-ownership"]
        for callee in service.calls:
            assert f"{name} -- " in pages["service-map"]
            assert f"--> {callee}" in pages["service-map"]
    for topic in specset.catalog.topics():
        assert f'[/"{topic}"/]' in pages["topic-flow"], topic
        assert f"| `{topic}` |" in pages["topic-flow"], topic
    for saga in specset.sagas:
        for step in saga.steps:
            assert f": {step.name} [{step.kind}]" in pages["sagas"], step.name
            assert f"| `{step.name}` | {step.kind} |" in pages["sagas"], step.name
            if step.compensation is not None:
                assert f"undo {step.name}:" in pages["sagas"], step.name
                assert f"undo_{step.name} -->" in pages["sagas"], step.name


def test_the_saga_dsl_reference_lists_every_field_of_the_schema() -> None:
    schema = json.loads((REPO_ROOT / "specs/schemas/saga.schema.json").read_text("utf-8"))
    reference = diagrams(REPO_ROOT)["saga-dsl-schema"]
    objects = [schema, *(d for d in schema["$defs"].values() if "properties" in d)]
    objects += [
        child
        for node in list(objects)
        for child in node["properties"].values()
        if "properties" in child
    ]
    for node in objects:
        for field_name in node["properties"]:
            assert f"| `{field_name}` |" in reference, field_name
    assert "| `jitter` |  | boolean | Default: `true`. |" in reference
    assert "(ms\\|s\\|m)" in reference  # pipes inside a table cell are escaped


def test_consumer_groups_come_from_the_asyncapi_receive_operations() -> None:
    flow = diagrams(REPO_ROOT)["topic-flow"]
    assert 'topic_payments_requested -- "payment-service" --> svc_payment' in flow
    assert "svc_orders --> topic_payments_requested" in flow
    assert "| `payments.requested` | orders | payment (payment-service) |" in flow


def test_adding_a_saga_step_to_the_spec_changes_the_diagram(shop: Path) -> None:
    before = diagrams(shop)["sagas"]
    replace_in(
        shop / "specs" / "sagas" / "place_order.saga.yaml",
        "  - name: confirm\n",
        "  - name: notify_customer\n"
        "    kind: retriable\n"
        "    action: {local: confirm_order, emits: [orders.placed], timeout: 750ms}\n"
        "    retry:\n"
        "      attempts: unlimited\n"
        "      backoff: {initial: 100ms, max: 5s, multiplier: 2}\n"
        "  - name: confirm\n",
    )
    after = diagrams(shop)["sagas"]
    assert "notify_customer" not in before
    assert (
        "orders->>orders: notify_customer [retriable]: confirm_order (local), timeout 750ms"
        in after
    )
    assert "commit_stock --> notify_customer: ok" in after
    assert "notify_customer --> confirm: ok" in after


def test_the_committed_pages_are_the_generated_ones() -> None:
    """``make check-generated`` covers this too; here the failure names the page."""
    for page, text in diagrams(REPO_ROOT).items():
        committed = REPO_ROOT / "docs" / "generated" / f"{page}.md"
        assert committed.read_text(encoding="utf-8") == text, f"run make generate: {page}.md"


def test_the_fixture_pages_are_deterministic() -> None:
    assert diagrams(FIXTURE) == diagrams(FIXTURE)
