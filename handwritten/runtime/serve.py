"""Run a service app with uvicorn and a graceful shutdown.

On SIGTERM/SIGINT uvicorn stops accepting connections, lets in-flight requests
finish for up to ``shutdown_grace_seconds``, then runs the app's lifespan shutdown,
which closes pools and clients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from handwritten.runtime.logging import configure_logging
from handwritten.runtime.settings import ServiceSettings


class _Server(uvicorn.Server):
    """uvicorn, except that a stop asked for by SIGTERM/SIGINT exits with status 0.

    uvicorn re-raises the caught signal after its graceful shutdown (exit 143); for
    a supervisor a requested, completed shutdown is a success.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Block serving ``app`` on the settings' host and port."""
    configure_logging(settings.service_name, settings.log_level)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
    _Server(config).run()
