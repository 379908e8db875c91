# The testing kit's fixture (workflow_env), as tests/testing takes it.
from pyworkflow.testing.plugin import workflow_env  # noqa: F401
