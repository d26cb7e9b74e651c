"""Durable saga orchestration driven by the generated saga definitions.

- ``machine``: the pure state machine (next move, retries, compensation order).
- ``store``: ``saga_instances`` / ``saga_step_executions`` (``migrate_saga``).
- ``engine``: ``SagaEngine`` — start, record replies, cancel, and one transition at a
  time (``run_one``), every transition one transaction with its outbox writes.
- ``worker``: ``SagaWorker`` — the loop that resumes every due instance.
"""

from handwritten.runtime.saga.engine import (
    CancelResult,
    CommandHandler,
    GrpcHandler,
    LocalHandler,
    OutcomeHandler,
    Participants,
    SagaContext,
    SagaDefinitionError,
    SagaEngine,
    StepContext,
    StepRejectedError,
)
from handwritten.runtime.saga.machine import (
    Compensation,
    SagaRecord,
    SagaState,
    StepRecord,
    StepStatus,
    api_step_status,
)
from handwritten.runtime.saga.store import (
    CHANNEL,
    COMPONENT,
    MIGRATIONS,
    Stored,
    migrate_saga,
)
from handwritten.runtime.saga.worker import SagaWorker

__all__ = [
    "CHANNEL",
    "COMPONENT",
    "MIGRATIONS",
    "CancelResult",
    "CommandHandler",
    "Compensation",
    "GrpcHandler",
    "LocalHandler",
    "OutcomeHandler",
    "Participants",
    "SagaContext",
    "SagaDefinitionError",
    "SagaEngine",
    "SagaRecord",
    "SagaState",
    "SagaWorker",
    "StepContext",
    "StepRecord",
    "StepRejectedError",
    "StepStatus",
    "Stored",
    "api_step_status",
    "migrate_saga",
]
