"""Run the suite's echo upstream on its own, for a gateway under docker compose.

    python -m tests.gateway.echo_server --port 9000

Point every Kong service at it (e.g. a compose override setting each service ``url``
to ``http://host.docker.internal:9000``) and run the suite with
``GATEWAY_ECHO_URL=http://127.0.0.1:9000``.
"""

from __future__ import annotations

import argparse

import uvicorn

from tests.gateway.support import EchoApp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(EchoApp(), host=args.host, port=args.port, lifespan="off", log_level="warning")


if __name__ == "__main__":
    main()
