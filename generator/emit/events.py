"""The topic/event registry and each service's typed producer and handler interfaces."""

from __future__ import annotations

from dataclasses import dataclass

from generator.crossref import resolve_local
from generator.emit import Output, header, render
from generator.errors import InvalidSpecsError, SpecError, join_pointer
from generator.specset import SpecSet


@dataclass(frozen=True)
class EventInfo:
    """Template view of one topic."""

    topic: str
    event_type: str
    payload_class: str
    key_field: str
    schema_version: int
    partitions: int
    summary: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]

    @property
    def constant(self) -> str:
        return self.topic.replace(".", "_").upper()

    @property
    def method(self) -> str:
        return self.topic.replace(".", "_")


def collect_events(specset: SpecSet) -> list[EventInfo]:
    """One ``EventInfo`` per AsyncAPI channel, sorted by topic."""
    assert specset.catalog is not None
    document = specset.asyncapi
    default_partitions = specset.catalog.infrastructure.kafka.default_partitions
    services = specset.catalog.services.values()
    events = []
    for key, channel in sorted((document.data.get("channels") or {}).items()):
        messages = list((channel.get("messages") or {}).values())
        if len(messages) != 1:
            raise InvalidSpecsError(
                [
                    document.error(
                        join_pointer("channels", key, "messages"),
                        "each channel carries exactly one message",
                    )
                ]
            )
        message = resolve_local(document, messages[0])
        payload_ref = str((message.get("payload") or {}).get("$ref", ""))
        if not payload_ref.startswith("#/components/schemas/"):
            raise InvalidSpecsError(
                [
                    SpecError(
                        document.relpath,
                        join_pointer("channels", key),
                        "message payload must $ref components/schemas",
                    )
                ]
            )
        topic = str(channel["address"])
        events.append(
            EventInfo(
                topic=topic,
                event_type=str(message["name"]),
                payload_class=payload_ref.rsplit("/", 1)[1],
                key_field=str(message["x-key"]),
                schema_version=int(message.get("x-schema-version", 1)),
                partitions=int(
                    ((channel.get("bindings") or {}).get("kafka") or {}).get(
                        "partitions", default_partitions
                    )
                ),
                summary=str(message.get("summary") or message.get("title") or topic),
                producers=tuple(s.name for s in services if topic in s.produces),
                consumers=tuple(s.name for s in services if topic in s.consumes),
            )
        )
    return sorted(events, key=lambda event: event.topic)


def emit_events(specset: SpecSet, out: Output) -> None:
    """``generated/events/registry.py`` and ``generated/services/<svc>/events.py``."""
    assert specset.catalog is not None
    events = collect_events(specset)
    by_topic = {event.topic: event for event in events}
    asyncapi = specset.asyncapi.relpath
    out.add("generated/events/__init__.py", header([asyncapi]))
    out.add(
        "generated/events/registry.py",
        render("events/registry.py.j2", banner=header([asyncapi]), events=events),
    )
    for name, service in sorted(specset.catalog.services.items()):
        if not (service.produces or service.consumes):
            continue
        produces = [by_topic[t] for t in sorted(service.produces)]
        consumes = [by_topic[t] for t in sorted(service.consumes)]
        banner = header([asyncapi, "specs/services.yaml"])
        out.add(
            f"generated/services/{name}/events.py",
            render(
                "events/service_events.py.j2",
                banner=banner,
                service=name,
                class_prefix=name.title().replace("-", ""),
                consumer_group=service.consumer_group,
                produces=produces,
                consumes=consumes,
                payload_classes=sorted({e.payload_class for e in produces + consumes}),
            ),
        )
