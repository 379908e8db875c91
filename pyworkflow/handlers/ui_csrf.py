"""CSRF protection of the run viewer's forms (``POST /ui/runs/{id}/cancel`` and
``POST /ui/runs/{id}/hooks/{name}``): two checks, both made before the form is acted on, so a
refused request changes nothing (a 403 page).

1. Same origin. The request's ``Origin`` header (a browser sends it with every form POST; else
   its ``Referer``) must name the host the request was sent to (``Host``), or an origin listed in
   ``PYWORKFLOW_UI_ORIGINS`` (comma-separated, ``scheme://host[:port]``): a SigV4-signing proxy
   rewrites ``Host`` to the API's own, so its address is listed there. A request with neither
   header, or ``Origin: null``, is refused. The pages send a referrer to their own origin only
   (``Referrer-Policy: same-origin``), under which a same-origin POST carries its real origin.
2. A token in a hidden field: ``<issued>.<HMAC-SHA256(key, [action, run id, issued])>``, valid
   for ``TOKEN_TTL`` seconds, for one action (``cancel`` or ``hook:<name>``) on one run. Only the
   run page, served behind the API's authorization, hands them out; a page on another origin
   cannot read ours (the API sends no CORS headers), so it has none to send.

The key: ``PYWORKFLOW_UI_SECRET`` when set (through an HMAC with a label of its own, so the same
secret used elsewhere yields an unrelated key); else a random key made when the container
starts. The trade-off: with a random key nothing needs configuring and no secret can leak, but a
token is only good on the container that issued it, so a form posted after a Lambda cold start
or to another concurrent container is refused (403: reload the page and submit again), as is any
form after a ``pyworkflow dev`` restart. Set the variable (in Secrets Manager or an encrypted
environment) when forms must survive containers; rotating it voids the forms in open pages.

No cookie: authentication is the API's (IAM, or nothing under ``pyworkflow dev``) and the token
is not bound to a user. Whoever may read a run page may submit its forms, like the JSON routes
they mirror; the token only proves the form came from a page we served.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from pyworkflow.settings import ENV_UI_ORIGINS, get_settings

TOKEN_TTL = 12 * 3600  # a page left open this long needs a reload before its forms work
_CLOCK_SKEW = 60  # a token "issued" this far in the future is still taken (containers' clocks)
_RANDOM_KEY = secrets.token_bytes(32)
_LABEL = b"pyworkflow ui csrf v1"


def cancel_action() -> str:
    return "cancel"


def hook_action(name: str) -> str:
    return "hook:" + name


def _key() -> bytes:
    secret = get_settings().ui_secret
    if secret is None:
        return _RANDOM_KEY
    return hmac.new(secret.get_secret_value().encode(), _LABEL, hashlib.sha256).digest()


def _signature(action: str, run_id: str, issued: int) -> str:
    message = json.dumps([action, run_id, issued], ensure_ascii=True).encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(action: str, run_id: str, *, now: float | None = None) -> str:
    """A token for ``action`` on ``run_id``, for the run page's hidden field."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_signature(action, run_id, issued)}"


def token_problem(token: str | None, action: str, run_id: str, *, now: float | None = None) -> str:
    """Why ``token`` does not allow ``action`` on ``run_id``; "" when it does."""
    if not token:
        return "The form has no CSRF token"
    issued_text, _, signature = token.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12 or not signature:
        return "The form's CSRF token is malformed"
    issued = int(issued_text)
    expected = _signature(action, run_id, issued)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "The form's CSRF token is not valid for this action on this run"
    age = (time.time() if now is None else now) - issued
    if age > TOKEN_TTL or age < -_CLOCK_SKEW:
        return "The form's CSRF token has expired"
    return ""


def _allowed_origins() -> set[str]:
    raw = get_settings().ui_origins or ""
    return {o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip()}


def origin_problem(headers: Mapping[str, str]) -> str:
    """Why the request is not from one of our pages (by ``Origin``, else ``Referer``); ""
    when it is. ``headers``: the event's, names lower-cased as API Gateway sends them."""
    origin = headers.get("origin")
    source = origin or headers.get("referer")
    if not source:
        return "The request has no Origin or Referer header"
    if source.strip() == "null":
        return "The request comes from an opaque origin (Origin: null)"
    parts = urlsplit(source.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "The request's origin is not a web origin"
    netloc = parts.netloc.lower()
    host = (headers.get("host") or "").strip().lower()
    if host and netloc == host:
        return ""
    if f"{parts.scheme}://{netloc}" in _allowed_origins():
        return ""
    return (
        f"The form was posted from {parts.scheme}://{netloc}, not from this site "
        f"(a proxy's origin can be allowed with {ENV_UI_ORIGINS})"
    )
