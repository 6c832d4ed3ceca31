"""The view's JSON encoding (SessionGraphQL.encode_json): orjson's compact UTF-8, and the json module's
text, escapes included, for what orjson refuses, so that every answer is JSON a client can read."""

from __future__ import annotations

import json

from schema.schema import build_schema
from schema.view import SessionGraphQL
from server.settings import Settings


def view() -> SessionGraphQL:
    settings = Settings.from_env({"DATABASE_URL": "sqlite://:memory:"})
    return SessionGraphQL(build_schema(settings), settings)


def test_answers_are_compact_utf8() -> None:
    data = {"data": {"a": [1, 2.5, None, True], "b": "caf\u00e9 \u2603", "c": {"d": "x"}}}
    encoded = view().encode_json(data)
    assert encoded == '{"data":{"a":[1,2.5,null,true],"b":"caf\u00e9 \u2603","c":{"d":"x"}}}'.encode()
    assert json.loads(encoded) == data


def test_what_orjson_refuses_is_escaped_json() -> None:
    data = {"errors": [{"message": "got '\ud800'", "extensions": {"n": 2**70}}]}
    encoded = view().encode_json(data)
    assert encoded == b'{"errors":[{"message":"got \'\\ud800\'","extensions":{"n":1180591620717411303424}}]}'
    assert json.loads(encoded) == data
