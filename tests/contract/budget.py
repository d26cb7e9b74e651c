"""How much the contract suite fuzzes, from the environment.

``make test`` runs the suite with the defaults: a small, reproducible budget
(derandomized, so the same cases every run). ``make fuzz`` raises the budget, makes
the run random and asks for reports.

- ``MC_FUZZ_EXAMPLES``: generated cases per operation, and stateful scenarios per
  API (default 12);
- ``MC_FUZZ_RANDOM``: ``1`` draws new cases every run (default: derandomized);
- ``MC_FUZZ_REPORT_DIR``: where the ndjson report of every test goes (default: none);
- ``GATEWAY_URL``: the gateway everything goes through (default ``http://127.0.0.1:8000``);
- ``MC_FUZZ_CLIENT_ADDRESS``: the loopback address stateless fuzz requests leave from
  (default: a random ``127.x.y.z`` per run; see ``transport.py``);
- ``MC_FUZZ_IDENTITY_ADDRESS``: the one the fuzzer's own accounts log in from
  (default ``127.0.0.3``; see ``identities.py``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck

DEFAULT_EXAMPLES = 12
_addresses = random.Random()  # not Hypothesis' randomness: it must not touch generation
#: Steps of one stateful scenario (create an order, read it, cancel it, read its events…).
SCENARIO_STEPS = 6


def random_loopback() -> str:
    """A fresh loopback address, outside 127.0.0.0/24 (the stack's and the pool's)."""
    octets = (_addresses.randint(1, 254) for _ in range(3))
    return "127." + ".".join(str(octet) for octet in octets)


@dataclass(frozen=True)
class FuzzBudget:
    """The knobs of one contract run."""

    examples: int
    randomized: bool
    report_dir: Path | None
    gateway_url: str
    client_address: str
    identity_address: str

    @classmethod
    def from_env(cls) -> FuzzBudget:
        report_dir = os.environ.get("MC_FUZZ_REPORT_DIR")
        return cls(
            examples=max(1, int(os.environ.get("MC_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))),
            randomized=os.environ.get("MC_FUZZ_RANDOM", "") == "1",
            report_dir=Path(report_dir) if report_dir else None,
            gateway_url=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/"),
            client_address=os.environ.get("MC_FUZZ_CLIENT_ADDRESS") or random_loopback(),
            identity_address=os.environ.get("MC_FUZZ_IDENTITY_ADDRESS", "127.0.0.3"),
        )

    def settings(self, *, shrink: bool = True) -> hypothesis.settings:
        """Hypothesis settings for one parametrized test or one state machine.

        Stateful scenarios are not shrunk: what a step may do next depends on what the
        live services answered before, so replaying a shorter scenario against data
        that has changed meanwhile only ends in Hypothesis' "flaky strategy" error, in
        place of the failure it found.
        """
        phases = [phase for phase in hypothesis.Phase if shrink or phase != hypothesis.Phase.shrink]
        return hypothesis.settings(
            phases=phases,
            max_examples=self.examples,
            derandomize=not self.randomized,
            # Never write a .hypothesis example database into the work tree.
            database=None,
            # A live stack on a busy machine: latency says nothing about correctness.
            deadline=None,
            suppress_health_check=list(HealthCheck),
            stateful_step_count=SCENARIO_STEPS,
            print_blob=True,
        )


BUDGET = FuzzBudget.from_env()
