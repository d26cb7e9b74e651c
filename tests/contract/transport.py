"""The HTTP session every fuzz request goes out on.

Two things happen here rather than when schemathesis builds a case, because part of
the cases are built while pytest collects the tests, before any request may be made:

- credentials: a case carries a placeholder bearer token naming the kind of account
  it needs (``contracts.PoolAuth``); the real token is taken from the identity pool
  when the request is sent, which is also when the request counts against that
  customer's rate limit;
- fuzz products: orders carry placeholder product ids, and changes to products the
  fuzzer did not create go to a scratch product of its own (``stock.py``).

The session's connections leave from their own loopback address (any ``127.0.0.0/8``
address reaches the gateway on ``127.0.0.1``): a random one per run for the stateless
tests, and a fresh one per stateful scenario. The auth service throttles failed logins
per client address (50 per 15 minutes): fuzzing the login operation fails on purpose
again and again, and from the shared ``127.0.0.1`` it would lock every other test and
user of the local stack out of logging in. From its own address the fuzzer only
throttles itself (the 429 it may then get is a documented answer of that operation),
and a scenario, which registers and then logs in, starts with a clean slate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class SourceAddressAdapter(HTTPAdapter):
    """An adapter whose connections are bound to one local address."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


class FuzzSession(requests.Session):
    """A session that resolves deferred values in each request before sending it."""

    def __init__(
        self,
        address: str,
        resolve: Callable[[requests.PreparedRequest], None],
        observe: Callable[[requests.Response], None] = lambda response: None,
    ) -> None:
        super().__init__()
        self._resolve = resolve
        self._observe = observe
        adapter = SourceAddressAdapter(address)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self._resolve(request)
        response = super().send(request, **kwargs)
        self._observe(response)
        return response
