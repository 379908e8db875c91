"""Lambda entry points: ``handlers.worker.handler`` (SQS) and ``handlers.api.handler`` (HTTP API
and direct invoke). Thin: the logic lives in ``pyworkflow.runtime``."""
