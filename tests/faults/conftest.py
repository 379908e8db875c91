"""The AWS fixtures (moto server, DynamoDB Local, a fresh stack per test,
``pyworkflow.handlers.worker``) are those of ``tests/aws``."""

from tests.aws.conftest import (  # noqa: F401 - fixtures
    aws,
    aws_env,
    dynamodb_local,
    moto,
    storage_kind,
    worker,
)
