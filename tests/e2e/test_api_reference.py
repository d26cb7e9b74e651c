"""Every running HTTP service serves its API reference with Scalar over its own OpenAPI."""

from __future__ import annotations

import httpx
import pytest

from generated import catalog


@pytest.mark.parametrize("name", sorted(catalog.SERVICES))
async def test_each_service_serves_scalar_over_its_openapi(name: str) -> None:
    base = f"http://127.0.0.1:{catalog.SERVICES[name].http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'id="api-reference"' in page.text
        assert "@scalar/api-reference@" in page.text, "the Scalar bundle is pinned"
        url = page.text.split('data-url="', 1)[1].split('"', 1)[0]
        document = (await client.get(url)).json()
    assert document["openapi"].startswith("3.")
    assert document["paths"], f"{name} documents its routes"
