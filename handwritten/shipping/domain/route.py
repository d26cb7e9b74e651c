"""Where a shipment goes and when it should arrive (a simulated carrier).

Every parcel leaves the São Paulo distribution center; the estimate counts business
days (Monday to Friday) by how far the destination state is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ORIGIN_STATE = "SP"
ORIGIN = "Distribution center, São Paulo - SP"

#: Business days from scheduling to delivery, by destination region.
SAME_STATE_DAYS = 2
NEARBY_DAYS = 4
FAR_DAYS = 7
#: Southeast and South: the regions served by road from São Paulo within days.
NEARBY_STATES = frozenset({"RJ", "MG", "ES", "PR", "SC", "RS"})


@dataclass(frozen=True)
class Destination:
    """The city and state (UF) of the delivery address."""

    city: str
    state: str

    def __str__(self) -> str:
        return f"{self.city} - {self.state}"


def transit_days(destination: Destination) -> int:
    """Business days the simulated carrier needs to reach ``destination``."""
    if destination.state == ORIGIN_STATE:
        return SAME_STATE_DAYS
    if destination.state in NEARBY_STATES:
        return NEARBY_DAYS
    return FAR_DAYS


def add_business_days(start: dt.date, days: int) -> dt.date:
    """``start`` plus ``days`` working days (weekends skipped)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def estimate_delivery_date(scheduled_on: dt.date, destination: Destination) -> dt.date:
    """When a shipment scheduled on ``scheduled_on`` should arrive."""
    return add_business_days(scheduled_on, transit_days(destination))


def in_transit_location(destination: Destination) -> str:
    return f"In transit to {destination}"


def delivered_location(destination: Destination) -> str:
    return str(destination)
