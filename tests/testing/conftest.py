# The plugin's fixture, taken as a user without the installed entry point would take it (a
# pytest_plugins line is only allowed in the rootdir's conftest; test_plugin.py checks that way).
from pyworkflow.testing.plugin import workflow_env  # noqa: F401
