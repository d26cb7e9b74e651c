"""Typed view of ``specs/services.yaml`` (validated first by its JSON Schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostPortImage(_Frozen):
    host: str
    port: int
    image: str


class KafkaInfra(_Frozen):
    host: str
    port: int
    controller_port: int
    image: str
    default_partitions: int


class PortImage(_Frozen):
    port: int
    image: str


class ClickHouseInfra(_Frozen):
    http_port: int
    image: str


class OtelCollectorInfra(_Frozen):
    otlp_http_port: int
    otlp_grpc_port: int
    image: str


class JaegerInfra(_Frozen):
    ui_port: int
    image: str


class KongInfra(_Frozen):
    image: str


class Infrastructure(_Frozen):
    postgres: HostPortImage
    redis: HostPortImage
    kafka: KafkaInfra
    clickhouse: ClickHouseInfra
    otel_collector: OtelCollectorInfra
    jaeger: JaegerInfra
    prometheus: PortImage
    grafana: PortImage
    kong: KongInfra


class GatewaySettings(_Frozen):
    port: int
    plugins: tuple[Literal["correlation-id", "prometheus"], ...]


class JwtSettings(_Frozen):
    issuer: str
    audience: str


class RateLimit(_Frozen):
    per_minute: int


class Platform(_Frozen):
    name: str
    gateway: GatewaySettings
    jwt: JwtSettings
    rate_limit: RateLimit


class Route(_Frozen):
    name: str
    paths: tuple[str, ...]
    methods: tuple[str, ...] | None = None
    auth: Literal["none", "jwt"]
    plugins: tuple[Literal["rate-limiting"], ...] = ()


class Gateway(_Frozen):
    routes: tuple[Route, ...]


class EnvVar(_Frozen):
    name: str
    default: str
    description: str


class Service(_Frozen):
    name: str = ""
    description: str
    http_port: int
    grpc_port: int | None = None
    database: str | None = None
    uses: tuple[Literal["postgres", "redis", "kafka", "clickhouse"], ...]
    openapi: str | None = None
    proto: str | None = None
    consumer_group: str | None = None
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    gateway: Gateway | None = None
    env: tuple[EnvVar, ...] = ()


class Catalog(_Frozen):
    version: Literal[1]
    platform: Platform
    infrastructure: Infrastructure
    services: dict[str, Service] = Field(default_factory=dict)

    @classmethod
    def from_data(cls, data: object) -> Catalog:
        """Build from already schema-validated YAML data; fills each service's name."""
        catalog = cls.model_validate(data)
        named = {
            name: service.model_copy(update={"name": name})
            for name, service in sorted(catalog.services.items())
        }
        return catalog.model_copy(update={"services": named})

    def topics(self) -> list[str]:
        """Every topic produced or consumed by any service, sorted."""
        return sorted({t for s in self.services.values() for t in (*s.produces, *s.consumes)})
