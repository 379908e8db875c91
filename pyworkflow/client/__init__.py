"""pyworkflow's SDK client: start, inspect, cancel and resume runs and manage schedules, the
same way whether the workflows run in this process or in a deployed stack.

    from pyworkflow.client import Client

    async with Client.from_env() as client:
        run_id = await client.start("order_processing", "o-1")
        run = await client.wait(run_id, timeout=60)

Transports: ``EmbeddedTransport`` (local storage, runs driven here), ``AwsTransport`` (the
stack's DynamoDB table + SQS queue), ``HttpTransport`` (the HTTP API, SigV4), ``LambdaTransport``
(direct invoke of the API function). Each implements ``Transport``.
"""

from pyworkflow.client.client import Client, workflow_name
from pyworkflow.client.errors import ApiError, TransportError
from pyworkflow.client.models import Cancelled, HookResumed, Started, WorkflowInfo
from pyworkflow.client.sync import SyncClient
from pyworkflow.client.transport import Transport
from pyworkflow.settings import ENV_API_URL

__all__ = [
    "Client",
    "SyncClient",
    "Transport",
    "ENV_API_URL",
    "workflow_name",
    # answers
    "HookResumed",
    "WorkflowInfo",
    "Started",
    "Cancelled",
    # errors that exist only on the client's side of a wire
    "ApiError",
    "TransportError",
]
