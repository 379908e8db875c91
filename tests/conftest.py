import pytest

import pyworkflow


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """Each test starts from default config, with the default SQLite file inside tmp_path."""
    monkeypatch.setenv("PYWORKFLOW_DB", str(tmp_path / "default.db"))
    pyworkflow.reset_config()
    yield
    pyworkflow.reset_config()
