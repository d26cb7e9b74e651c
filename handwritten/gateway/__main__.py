"""``python -m handwritten.gateway``: the proxy on GATEWAY_PORT, status on GATEWAY_STATUS_PORT.

Both listeners run in one process (as Kong's proxy and status listeners). SIGTERM or
SIGINT stops them gracefully: in-flight requests get ``GATEWAY_SHUTDOWN_GRACE_SECONDS``.
A kong.yml this gateway cannot enforce stops it at startup (exit code 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Generator
from typing import Literal

import uvicorn

from handwritten.gateway.app import Gateway, load_kong_config, status_app
from handwritten.gateway.domain.config import ConfigError
from handwritten.gateway.settings import GatewaySettings
from handwritten.runtime.logging import configure_logging, get_logger
from handwritten.runtime.tracing import configure_tracing, instrument_asgi

log = get_logger("gateway")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` (two servers share it)
    and says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def _config(
    app: object, settings: GatewaySettings, port: int, *, lifespan: Literal["on", "off"]
) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.gateway_host,
        port=port,
        lifespan=lifespan,
        log_config=None,
        access_log=False,  # the gateway writes one line per request itself
        server_header=False,  # upstream headers pass through as they are
        date_header=False,
        proxy_headers=False,  # the gateway is the edge: the peer address is the client
        timeout_keep_alive=settings.gateway_keepalive_seconds,
        timeout_graceful_shutdown=int(settings.gateway_shutdown_grace_seconds),
    )


async def serve(settings: GatewaySettings) -> None:
    """Run both listeners until SIGTERM/SIGINT."""
    gateway = Gateway(settings, load_kong_config(settings.kong_config))
    # A server span per proxied request (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set);
    # the upstream call is its httpx client span, which sends its traceparent on.
    configure_tracing("gateway")
    proxy_app = instrument_asgi(gateway)
    proxy = _Server(_config(proxy_app, settings, settings.gateway_port, lifespan="on"))
    status = _Server(
        _config(status_app(gateway), settings, settings.gateway_status_port, lifespan="off")
    )

    def stop() -> None:
        proxy.should_exit = status.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    proxy_task = asyncio.create_task(proxy.serve())
    # The status listener answers only once the proxy listens: /status means "serving".
    listening = asyncio.create_task(proxy.listening.wait())
    await asyncio.wait({proxy_task, listening}, return_when=asyncio.FIRST_COMPLETED)
    if not proxy.listening.is_set():
        listening.cancel()
        await proxy_task
        raise SystemExit(1)  # uvicorn has logged why (e.g. the port is taken)
    await status.serve()
    stop()
    await proxy_task
    log.info("gateway_stopped")


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    log.info(
        "gateway_starting",
        port=settings.gateway_port,
        status_port=settings.gateway_status_port,
        kong_config=str(settings.kong_config),
        jwks_url=settings.jwks_url,
    )
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        log.error("gateway_config_invalid", error=str(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
