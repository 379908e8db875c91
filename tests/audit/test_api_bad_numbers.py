"""API (audit behaviour 11 and the README's "Bad input is a 4xx with a JSON error naming the
problem"): a request body holding an integer literal longer than Python's 4300-digit limit is a
500 InternalError: the body's ``json.loads`` raises ValueError ("Exceeds the limit (4300 digits)
for integer string conversion") inside the route, which the catch-all turns into a 500 instead of
the 400 a malformed body gets (``pyworkflow/handlers/api.py``)."""

from tests.handlers.api.conftest import Api, http_event


def test_an_oversized_integer_literal_in_a_body_is_a_4xx(api: Api) -> None:
    body = '{"workflow": "api_greet", "args": [' + "9" * 5000 + "]}"
    answer = api.call(http_event("POST", "/runs", raw_body=body))
    # Now: 500 {"error": {"type": "InternalError", ...}}.
    assert 400 <= answer.status < 500, answer
    assert answer.body["error"]["type"] != "InternalError"
