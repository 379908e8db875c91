"""Escaping-first HTML building for the run viewer.

Everything shown comes from runs (arguments, results, hook payloads, error messages): user data
an attacker may choose. So markup is only ever made by ``h(template, ...)``, which escapes every
value it inserts unless that value is already ``Html`` (markup this module produced). A value
can only become ``Html`` by passing through ``esc``/``h``; nothing here marks raw text as safe.
The page's Content-Security-Policy (``CSP``) allows no script at all and only our own
stylesheet, as a second line of defence should an escape ever be missed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode


class Html(str):
    """Markup built by this module (its parts escaped); inserted into templates as is."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as HTML text: ``Html`` unchanged, None as nothing, anything else escaped
    (quotes too, so the result is safe inside an attribute value)."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(str(value), quote=True))


def h(template: str, *args: Any, **kwargs: Any) -> Html:
    """``template.format(...)`` with every argument escaped. Templates are literals of this
    package: attribute values in them are always quoted."""
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


# --- links ------------------------------------------------------------------------------------
# Links are relative, so the pages also work behind a stage or a custom domain's base path
# (``/prod/ui``). Ids are percent-quoted with nothing kept: an id can never become a scheme
# ("javascript:") or another path.
def run_href(run_id: str, *, from_list: bool) -> str:
    """From ``/ui`` (the list) or from ``/ui/runs/<id>`` (a run page) to run ``run_id``."""
    return ("ui/runs/" if from_list else "./") + quote(run_id, safe="")


LIST_HREF_FROM_RUN = "../../ui"


def query_href(params: dict[str, Any]) -> str:
    """A query-only link (same page), empty values left out."""
    clean = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(clean) if clean else "?"


# --- values -----------------------------------------------------------------------------------
def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return (
        value.strftime("%Y-%m-%d %H:%M:%S.")
        + f"{value.microsecond // 1000:03d}"
        + ("Z" if value.utcoffset() is not None and not value.utcoffset() else "")
    )


def fmt_seconds(seconds: float | None) -> str:
    """``0.4 ms``, ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``, ``3d 04h``."""
    if seconds is None:
        return "—"
    if seconds < 0:
        return "-" + fmt_seconds(-seconds)
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def fmt_offset(seconds: float | None) -> str:
    """A time since the run started: ``+0 ms``, ``+1.2 s``."""
    return "—" if seconds is None else "+" + fmt_seconds(seconds)


PAYLOAD_PREVIEW = 160  # characters of a value shown inline
PAYLOAD_MAX = 20_000  # characters of a value shown at all (the API has the rest)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def json_block(value: Any, *, css: str = "payload") -> Html:
    """A value as JSON: inline when short, else a preview that expands to the (capped) whole."""
    text = to_json(value)
    if len(text) <= PAYLOAD_PREVIEW:
        return h('<code class="{}">{}</code>', css, text)
    full = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, default=str)
    more = ""
    if len(full) > PAYLOAD_MAX:
        more = f"\n… {len(full) - PAYLOAD_MAX} more characters (GET /runs/<id>/events)"
        full = full[:PAYLOAD_MAX]
    return h(
        '<details class="{}"><summary><code>{}…</code></summary><pre>{}{}</pre></details>',
        css,
        text[:PAYLOAD_PREVIEW],
        full,
        more,
    )


def json_text_block(raw: str | None) -> Html:
    """A run field that holds JSON text (``result``, ``input_args``)."""
    if raw is None:
        return Html("")
    try:
        return json_block(json.loads(raw))
    except ValueError:
        return json_block(raw)


# --- the page ---------------------------------------------------------------------------------
CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --accent:#2f5bea; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0; background: var(--bg); }
header.top { background: #111827; color: #fff; padding: 10px 24px; display: flex; gap: 16px;
             align-items: baseline; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top span { color: #9ca3af; }
main { padding: 16px 24px 48px; max-width: 1400px; }
h1 { font-size: 20px; margin: 8px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: #f2f4f7; font-weight: 600; font-size: 12px; color: #344054;
     text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
                     font-size: 12px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 6px 0 0; max-height: 400px;
      overflow: auto; background: #f9fafb; padding: 6px; border: 1px solid var(--line); }
code.payload { word-break: break-all; }
details summary { cursor: pointer; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; background: #eef2f6; color: #364152; white-space: nowrap; }
.s-completed { background: #dcfae6; color: #067647; }
.s-failed { background: #fee4e2; color: #b42318; }
.s-running, .s-pending { background: #dbe8fe; color: #1d4ed8; }
.s-suspended { background: #fef0c7; color: #93370d; }
.s-cancelled, .s-interrupted { background: #f2f4f7; color: #475467; }
.s-continued_as_new { background: #ede9fe; color: #5b21b6; }
.t-step { color: #1d4ed8; } .t-sleep, .t-hook { color: #93370d; }
.t-child_workflow { color: #5b21b6; } .t-workflow { color: #067647; }
tr.bad td { background: #fff6f5; } tr.retry td { background: #fffaeb; }
form.filters { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; margin: 8px 0 12px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #344054; }
form.filters select, form.filters input { font: inherit; padding: 4px 6px; min-width: 140px; }
form.filters button { font: inherit; padding: 5px 14px; }
.pager { margin: 12px 0; display: flex; gap: 16px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0;
           background: #fff; border: 1px solid var(--line); padding: 12px 16px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
ol.chain { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px;
           align-items: center; margin: 0; }
ol.chain li + li::before { content: "→ "; color: var(--muted); }
ol.chain li.current a, ol.chain li.current span { font-weight: 700; }
.error-box { background: #fff6f5; border: 1px solid #fecdca; padding: 8px 12px; }
svg.bar { display: block; } svg.bar rect.track { fill: #f2f4f7; }
svg.bar rect.step { fill: #2f5bea; } svg.bar rect.sleep, svg.bar rect.hook { fill: #f79009; }
svg.bar rect.child { fill: #7a5af8; } svg.bar rect.other { fill: #98a2b3; }
svg.bar rect.failed { fill: #d92d20; }
.actions { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
form.action { background: #fff; border: 1px solid var(--line); padding: 10px 14px;
              display: flex; flex-direction: column; gap: 8px; }
form.action h3 { font-size: 14px; margin: 0; }
form.action label { display: flex; flex-direction: column; font-size: 12px; color: #344054; }
form.action textarea, form.action input { font: 12px ui-monospace, Menlo, Consolas, monospace;
                                          padding: 4px 6px; }
form.action button { font: inherit; padding: 5px 14px; align-self: flex-start; }
button.danger { color: #b42318; }
.flash { background: #ecfdf3; border: 1px solid #abefc6; padding: 8px 12px; }
"""

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
#: No script may run (there is none), styles only from our own block, forms only to us.
CSP = (
    "default-src 'none'; img-src data:; "
    f"style-src 'sha256-{_CSS_HASH}'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def status_badge(status: str) -> Html:
    return h('<span class="badge s-{}">{}</span>', status, status.replace("_", " "))


def page(
    title: str,
    body: Html,
    *,
    refresh_seconds: int | None = None,
    refresh_href: str | None = None,
    home_href: str = "ui",
) -> Html:
    content = f"{refresh_seconds}; url={refresh_href}" if refresh_href else refresh_seconds
    refresh = (
        h('<meta http-equiv="refresh" content="{}">', content) if refresh_seconds else Html("")
    )
    return Html(
        h(
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>{title} · pyworkflow</title><link rel="icon" href="data:,">{refresh}'
            "<style>",
            title=title,
            refresh=refresh,
        )
        + CSS
        + h(
            '</style></head><body><header class="top"><a href="{home}">pyworkflow runs</a>'
            "<span>run viewer</span></header><main>{body}</main></body></html>\n",
            home=home_href,
            body=body,
        )
    )


def error_page(
    status: int, title: str, message: str, *, home_href: str, back_href: str | None = None
) -> Html:
    back = h('<a id="back-to-run" href="{}">Back to the run</a> · ', back_href) if back_href else ""
    return page(
        title,
        h(
            '<h1>{}</h1><p class="error-box" id="error-message">{}</p>'
            '<p>{}<a href="{}">All runs</a></p>',
            f"{status} · {title}",
            message,
            back,
            home_href,
        ),
        home_href=home_href,
    )
