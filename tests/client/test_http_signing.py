"""``Client.http(url)`` signs with SigV4 for a deployed API and, like the CLI, not for a
loopback URL (``pyworkflow dev``), so the local stack needs no AWS credentials."""

from __future__ import annotations

import socket

import pytest

from pyworkflow.client import Client
from pyworkflow.client.errors import TransportError


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        ("http://127.0.0.1:8787", False),
        ("http://localhost:8787", False),
        ("http://[::1]:8787", False),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com", True),
    ],
)
def test_loopback_urls_are_not_signed_by_default(url: str, signed: bool) -> None:
    assert Client.http(url).transport.sign is signed  # type: ignore[attr-defined]
    assert Client.http(url, sign=True).transport.sign is True  # type: ignore[attr-defined]


async def test_a_loopback_client_needs_no_aws_credentials(monkeypatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Client.http(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransportError) as raised:
            await client.get_run("run_x")
    finally:
        await client.close()
    assert "credentials" not in str(raised.value).lower()
