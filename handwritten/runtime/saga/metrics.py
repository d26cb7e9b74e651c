"""Prometheus metrics of the saga engine (counted after the transition commits)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from handwritten.runtime.metrics import REGISTRY

SAGAS_STARTED = Counter(
    "saga_started",
    "Saga instances that began executing their first step.",
    ["saga"],
    registry=REGISTRY,
)
SAGAS_COMPLETED = Counter(
    "saga_completed",
    "Saga instances that completed every step.",
    ["saga"],
    registry=REGISTRY,
)
SAGAS_COMPENSATED = Counter(
    "saga_compensated",
    "Saga instances that turned back and finished every compensation, by reason.",
    ["saga", "reason"],
    registry=REGISTRY,
)
SAGAS_FAILED = Counter(
    "saga_failed",
    "Saga instances that entered FAILED: a compensation is stuck (still retried), by reason.",
    ["saga", "reason"],
    registry=REGISTRY,
)
STEPS_STUCK = Counter(
    "saga_steps_stuck",
    "Steps marked stuck: a compensation (or a step after the pivot) that keeps failing.",
    ["saga", "step", "phase"],
    registry=REGISTRY,
)
STEP_RETRIES = Counter(
    "saga_step_retries",
    "Failed attempts scheduled for another try, by step, phase and failure code.",
    ["saga", "step", "phase", "code"],
    registry=REGISTRY,
)
REPLIES_IGNORED = Counter(
    "saga_replies_ignored",
    "Reply events no step awaited (duplicates, late replies, other instances').",
    ["saga", "topic"],
    registry=REGISTRY,
)
TRANSITION_FAILURES = Counter(
    "saga_transition_failures",
    "Transitions that raised before being recorded (retried with backoff).",
    ["saga"],
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "saga_step_duration_seconds",
    "Time from a step's first attempt (or its compensation's) to its end, retries included.",
    ["saga", "step", "phase", "result"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
