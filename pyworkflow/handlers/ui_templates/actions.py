"""The run page's forms (cancel the run; resume a pending hook by name with a JSON payload) and
the message shown after one was submitted. Plain HTML forms: the pages run no script.

Forms post to ``/ui/runs/{run_id}/cancel`` and ``/ui/runs/{run_id}/hooks/{name}`` (relative
links, like every link of the viewer), each with its CSRF token (``ui_csrf.py``) in a hidden
field. After an action the browser is sent back to the run page with ``?done=cancelled`` or
``?done=resumed&hook=<name>``: a code, not a message, so a link cannot make the page say
anything but the few sentences below (the hook's name inserted as escaped text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from pyworkflow.handlers.ui_templates.html import Html, h, join

CSRF_FIELD = "csrf_token"
REASON_FIELD = "reason"
PAYLOAD_FIELD = "payload"
REASON_MAX = 1000  # CancelRequest's limit


@dataclass
class Actions:
    """What the run page offers: a cancel form (its token; None when the run has ended) and a
    form per pending hook (name → token)."""

    cancel_token: str | None = None
    hook_tokens: Mapping[str, str] = field(default_factory=dict)


def cancel_href(run_id: str) -> str:
    """From the run page (``/ui/runs/<id>``) to its cancel route."""
    return quote(run_id, safe="") + "/cancel"


def hook_href(run_id: str, name: str) -> str:
    return quote(run_id, safe="") + "/hooks/" + quote(name, safe="")


def done_query(done: str, hook: str | None = None) -> str:
    params = {"done": done} | ({"hook": hook} if hook is not None else {})
    return urlencode(params)


def flash(query: Mapping[str, str]) -> Html:
    """The message for the ``done`` code in the run page's query; nothing for anything else."""
    done = query.get("done")
    if done == "cancelled":
        text = h("Cancellation requested: the run stops at its next step or wait.")
    elif done == "resumed" and query.get("hook"):
        text = h("Payload delivered to hook <code>{}</code>.", query["hook"])
    else:
        return Html("")
    return h('<p class="flash" id="flash" role="status">{}</p>', text)


def render_actions(run_id: str, actions: Actions) -> Html:
    forms: list[Html] = []
    for name, token in sorted(actions.hook_tokens.items()):
        forms.append(
            h(
                '<form class="action resume-hook" method="post" action="{action}" '
                'data-hook="{name}"><h3>Resume hook <code>{name}</code></h3>'
                '<input type="hidden" name="{csrf}" value="{token}">'
                '<label>Payload (JSON)<textarea name="{payload}" rows="4" cols="60" required '
                'spellcheck="false" placeholder="{{&quot;approved&quot;: true}}"></textarea>'
                '</label><button type="submit">Resume {name}</button></form>',
                action=hook_href(run_id, name),
                name=name,
                csrf=CSRF_FIELD,
                token=token,
                payload=PAYLOAD_FIELD,
            )
        )
    if actions.cancel_token is not None:
        forms.append(
            h(
                '<form class="action cancel-run" method="post" action="{action}">'
                "<h3>Cancel run</h3>"
                '<input type="hidden" name="{csrf}" value="{token}">'
                '<label>Reason (optional)<input type="text" name="{reason}" maxlength="{max}">'
                '</label><button type="submit" class="danger">Cancel run</button></form>',
                action=cancel_href(run_id),
                csrf=CSRF_FIELD,
                token=actions.cancel_token,
                reason=REASON_FIELD,
                max=REASON_MAX,
            )
        )
    if not forms:
        return Html("")
    return h('<h2>Actions</h2><div class="actions" id="actions">{}</div>', join(forms))
