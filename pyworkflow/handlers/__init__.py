"""Lambda entry points: ``pyworkflow.handlers.worker.handler`` (SQS) and
``pyworkflow.handlers.api.handler`` (HTTP API and direct invoke). Thin: the operations live in
``pyworkflow.service``, the engine in ``pyworkflow.runtime`` (README.md here has the details)."""
