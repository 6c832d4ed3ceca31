"""Hand-written hostile input: each case has one exact expected answer, and none is a 5xx.

Huge tokens, NUL and non-UTF-8 bytes in every place a client puts text (bearer header, cookie,
channel-token header, JSON body), integers beyond every range, ids that only look like numbers,
and strings far longer than their columns or that no database can store. JSON bodies are encoded
here with json.dumps (ASCII: a lone surrogate travels as the escape \\ud800, as any JSON client may
send it). Starting the app costs about a second, so each test runs a family of cases against one
app and reports every case that got another answer than expected, not only the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from schema.schema import build_schema
from server.settings import Settings
from tests.graphql import GraphQLClient

SettingsFactory = Callable[..., Settings]
MakeClient = Callable[[Settings], Any]

MEGABYTE = 2**20
ADMIN = ("superadmin", "superadmin")

ACTIVE_SESSION = "{ activeSession { id } }"
SESSION_FROM_TOKEN = "query($t: String!) { sessionFromToken(token: $t) { id } }"
SERIALIZE_SESSION = "query($t: String!) { serializeSession(token: $t) { id } }"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { __typename } }"
LOGIN_TOKEN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on CachedSession { token } } }"
)
ADD_ITEM = "mutation($v: ID!, $q: Int!) { addItemToOrder(productVariantId: $v, quantity: $q) { id } }"
CLEAN = "mutation($n: Int!) { cleanExpiredSessions(batchSize: $n) }"
CREATE_CHANNEL = "mutation($i: CreateChannelInput!) { createChannel(input: $i) { id } }"
CREATE_USER = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }"
CREATE_ROLE = "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }"
UPDATE_ROLE = "mutation($i: UpdateRoleInput!) { updateRole(input: $i) { id } }"
IMPERSONATE = (
    "mutation($u: ID!, $s: String!) "
    "{ createNewAuthenticatedSession(userId: $u, authenticationStrategyName: $s) { id } }"
)

CHANGE_PASSWORD = (
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { success } }"
)
SDL = build_schema().as_str()

SURROGATE = "\ud800"
#: Text no database stores as given: NUL (PostgreSQL refuses it) and lone surrogates (not encodable as UTF-8).
NOT_STORABLE = ("a\x00b", f"a{SURROGATE}b", "\udfff")


class Api:
    """The app, a superadmin and a guest token, and the cases that got an unexpected answer."""

    def __init__(self, client: GraphQLClient) -> None:
        self.http = client.http
        self.admin = ""
        self.guest = ""
        self.mismatches: list[str] = []

    async def start(self) -> None:
        self.admin = (await self.data(LOGIN_TOKEN, {"u": ADMIN[0], "p": ADMIN[1]}))["login"]["token"]
        created = await self.data("mutation { createAnonymousSession { token } }")
        self.guest = created["createAnonymousSession"]["token"]

    def expect(self, case: str, answer: object, expected: object) -> None:
        if answer != expected:
            self.mismatches.append(f"{case}: expected {expected!r}, got {answer!r}")

    def assert_all_expected(self) -> None:
        assert self.mismatches == [], "\n".join(self.mismatches)

    async def post(self, content: bytes, headers: dict[str, Any] | None = None) -> httpx.Response:
        """POST a raw body; whatever it is, the answer is no 5xx and holds no traceback."""
        self.http.cookies.clear()  # credentials are explicit in each case
        response = await self.http.post(
            "/graphql", content=content, headers={"content-type": "application/json", **(headers or {})}
        )
        assert response.status_code < 500, f"{content[:100]!r}: {response.status_code} {response.text[:300]}"
        assert "Traceback" not in response.text
        return response

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None, **headers: Any
    ) -> httpx.Response:
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return await self.post(json.dumps({"query": query, "variables": variables or {}}).encode(), headers)

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = await self.graphql(query, variables, **kwargs)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, response.text[:300]
        data: dict[str, Any] = body["data"]
        return data

    async def answer(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> object:
        """The data of a successful operation, or the error code(s) of a failed one; else the HTTP status."""
        response = await self.graphql(query, variables, **kwargs)
        if response.status_code != 200:
            return response.status_code
        body = response.json()
        if "errors" not in body:
            return body["data"]
        codes = [error.get("extensions", {}).get("code") for error in body["errors"]]
        return codes[0] if len(codes) == 1 else codes


@pytest.fixture
async def api(make_client: MakeClient, make_settings: SettingsFactory) -> Api:
    api = Api(await make_client(make_settings(login_rate_limit=None)))
    await api.start()
    return api


def as_literal(value: object) -> str:
    return repr(value) if isinstance(value, float) else json.dumps(value)


# -- Tokens: huge, NUL, not UTF-8 ---------------------------------------------------------------------


async def test_huge_tokens_name_no_session(api: Api) -> None:
    """A megabyte of token in the bearer header, the cookie or the argument: no session, never a 5xx."""
    query = json.dumps({"query": ACTIVE_SESSION}).encode()
    bearer = await api.post(query, {"authorization": "Bearer " + "a" * MEGABYTE})
    api.expect("1 MB bearer", (bearer.status_code, bearer.json()), (200, {"data": {"activeSession": None}}))
    cookie = await api.post(query, {"cookie": "session=" + "a" * MEGABYTE})
    api.expect("1 MB cookie", (cookie.status_code, cookie.json()), (200, {"data": {"activeSession": None}}))
    api.expect("1 MB cookie is cleared", 'session=""' in cookie.headers.get("set-cookie", ""), True)
    # The body limit may refuse a megabyte argument before it is parsed: 413, or else no session.
    argument = await api.answer(SESSION_FROM_TOKEN, {"t": "a" * MEGABYTE})
    api.expect("1 MB sessionFromToken", argument in (413, {"sessionFromToken": None}), True)
    near_limit = "a" * 60_000
    api.expect(
        "60 KB sessionFromToken", await api.answer(SESSION_FROM_TOKEN, {"t": near_limit}), {"sessionFromToken": None}
    )
    api.expect(
        "60 KB serializeSession",
        await api.answer(SERIALIZE_SESSION, {"t": near_limit}, token=api.admin),
        {"serializeSession": None},
    )
    api.assert_all_expected()


async def test_nul_and_non_utf8_bytes_in_the_bearer_header_and_the_cookie_are_no_session(api: Api) -> None:
    query = json.dumps({"query": ACTIVE_SESSION}).encode()
    no_session = (200, {"data": {"activeSession": None}})
    bearers = [
        b"Bearer abc\x00def",
        b"Bearer \x00",
        b"Bearer \xff\xfe\xfd",
        b"Bearer \xc3\x28",
        b"\x00Bearer x",
        f"Bearer {api.admin}\x00".encode(),  # a valid token with a NUL after it is another token
        f"Bearer {api.admin}\xff".encode("latin-1"),
    ]
    for value in bearers:
        response = await api.post(query, {"authorization": value})
        api.expect(f"authorization {value[:20]!r}", (response.status_code, response.json()), no_session)
    cookies = [
        b"session=abc\x00def",
        b"session=\xff\xfe",
        b"session=\x00",
        b"session=\xc3\x28; other=\x00",
        f"session={api.admin}\x00".encode(),
    ]
    for value in cookies:
        response = await api.post(query, {"cookie": value})
        api.expect(f"cookie {value[:20]!r}", (response.status_code, response.json()), no_session)
    api.assert_all_expected()


async def test_a_channel_token_header_naming_no_channel_is_a_400(api: Api) -> None:
    query = json.dumps({"query": "{ activeChannel { id } }"}).encode()
    for value in [b"a\x00b", b"\x00", b"\xff\xfe", b"\xc3\x28", b"x" * 129, b"x" * MEGABYTE, b" "]:
        response = await api.post(query, {"channel-token": value})
        api.expect(f"channel-token {value[:20]!r}", response.status_code, 400)
    api.assert_all_expected()


async def test_token_arguments_with_nul_or_lone_surrogates_name_no_session(api: Api) -> None:
    for token in [*NOT_STORABLE, "\x00" * 43, api.admin + "\x00", api.admin + SURROGATE, "a" * 257, " ", "\t\n"]:
        answer = await api.answer(SESSION_FROM_TOKEN, {"t": token})
        api.expect(f"sessionFromToken {token[:20]!r}", answer, {"sessionFromToken": None})
        answer = await api.answer(SERIALIZE_SESSION, {"t": token}, token=api.admin)
        api.expect(f"serializeSession {token[:20]!r}", answer, {"serializeSession": None})
    api.assert_all_expected()


# -- The JSON body ------------------------------------------------------------------------------------

NOT_AN_OPERATION = {
    "not UTF-8 in the query": b'{"query": "{ activeChannel { id } }\xff\xfe"}',
    "not UTF-8 in a variable": b'{"query": "query($t: String!) { sessionFromToken(token: $t) { id } }", '
    b'"variables": {"t": "\xc3\x28"}}',
    "raw NUL in a string": b'{"query": "{ activeChannel { id } }\x00"}',
    "only NUL bytes": b"\x00" * 13,
    "UTF-32 byte order mark": b"\xff\xfe\x00\x00",
    "5000-digit number": b'{"query": "{ activeChannel { id } }", "variables": {"n": ' + b"9" * 5000 + b"}}",
    "nested 20000 deep": b'{"query": "{ activeChannel { id } }", "variables": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "bare string": b'"{ activeChannel { id } }"',
    "bare number": b"42",
    "null": b"null",
    "true": b"true",
    "empty": b"",
    "truncated": b"{",
    "variables not an object": b'{"query": "{ activeChannel { id } }", "variables": [1]}',
    "query not a string": b'{"query": 1}',
    # Strawberry's plain-text 400 for an unknown operation echoes its name, which must be encodable text.
    "lone surrogate in operationName": b'{"query": "query A { activeChannel { id } }", "operationName": "\\ud800"}',
    "NUL in operationName": b'{"query": "query A { activeChannel { id } }", "operationName": "A\\u0000"}',
    "unknown operationName": b'{"query": "query A { activeChannel { id } }", "operationName": "B"}',
}


async def test_a_body_that_is_no_json_operation_is_a_400(api: Api) -> None:
    for case, body in NOT_AN_OPERATION.items():
        api.expect(case, (await api.post(body)).status_code, 400)
    api.assert_all_expected()


async def test_a_megabyte_body_is_a_413(api: Api) -> None:
    response = await api.graphql(LOGIN, {"u": "u" * MEGABYTE, "p": "p"})
    assert response.status_code == 413, response.text[:300]


async def test_escapes_in_the_query_text(api: Api) -> None:
    # A lone surrogate is no character a GraphQL document may hold; NUL is, and names no session.
    api.expect("\\uD800 escape", await api.answer('{ sessionFromToken(token: "\\uD800") { id } }'), "BAD_USER_INPUT")
    api.expect(
        "raw surrogate", await api.answer(f'{{ sessionFromToken(token: "{SURROGATE}") {{ id }} }}'), "BAD_USER_INPUT"
    )
    api.expect(
        "\\u0000 escape",
        await api.answer('{ sessionFromToken(token: "a\\u0000b") { id } }'),
        {"sessionFromToken": None},
    )
    literal = 'mutation { login(username: "a\\u0000b", password: "x") { __typename } }'
    api.expect(
        "NUL in a login literal", await api.answer(literal), {"login": {"__typename": "InvalidCredentialsError"}}
    )
    api.assert_all_expected()


# -- Login with what no user can be called ------------------------------------------------------------

HOSTILE_CREDENTIALS = {
    "NUL in the username": ("a\x00b", "x"),
    "surrogate in the username": (f"a{SURROGATE}b", "x"),
    "NUL after a known username": ("superadmin\x00", ADMIN[1]),
    "surrogate in the password": (ADMIN[0], f"x{SURROGATE}"),
    "NUL after the right password": (ADMIN[0], ADMIN[1] + "\x00"),
    "256-character username": ("u" * 256, "x"),
    "1000-character username": ("u" * 1000, "x"),
    "10000-character username": ("u" * 10_000, "x"),
    "10000-character password": (ADMIN[0], "p" * 10_000),
    "empty": ("", ""),
    "Arabic digits": ("١٢٣", "٤٥٦"),
}


async def test_login_with_hostile_credentials_is_invalid_credentials(api: Api) -> None:
    refused = {"login": {"__typename": "InvalidCredentialsError"}}
    for case, (username, password) in HOSTILE_CREDENTIALS.items():
        api.expect(case, await api.answer(LOGIN, {"u": username, "p": password}), refused)
    api.assert_all_expected()


# -- Numbers out of every range -----------------------------------------------------------------------


async def test_quantities_out_of_range_are_bad_user_input(api: Api) -> None:
    # Beyond GraphQL's Int (32-bit), as variables and as literals; then outside 1..1 000 000 a line.
    for quantity in [2**31, 2**63, -(2**31) - 1, 10**30, 1e300, 0.5, "1", True]:
        variable = await api.answer(ADD_ITEM, {"v": "sku-1", "q": quantity}, token=api.guest)
        api.expect(f"quantity ${quantity!r}", variable, "BAD_USER_INPUT")
        query = f'mutation {{ addItemToOrder(productVariantId: "sku-1", quantity: {as_literal(quantity)}) {{ id }} }}'
        api.expect(f"quantity literal {quantity!r}", await api.answer(query, token=api.guest), "BAD_USER_INPUT")
    for quantity in [-1, 0, -(2**31), 2**31 - 1, 1_000_001]:
        answer = await api.answer(ADD_ITEM, {"v": "sku-1", "q": quantity}, token=api.guest)
        api.expect(f"quantity {quantity}", answer, "BAD_USER_INPUT")
    await api.data(ADD_ITEM, {"v": "sku-1", "q": 1_000_000}, token=api.guest)
    api.expect(
        "line past its maximum", await api.answer(ADD_ITEM, {"v": "sku-1", "q": 1}, token=api.guest), "BAD_USER_INPUT"
    )
    api.assert_all_expected()


async def test_batch_sizes_out_of_range_are_bad_user_input(api: Api) -> None:
    for size in [2**31, 2**63, -1, 0, 100_001, -(2**31)]:
        api.expect(f"batchSize ${size}", await api.answer(CLEAN, {"n": size}, token=api.admin), "BAD_USER_INPUT")
        literal = f"mutation {{ cleanExpiredSessions(batchSize: {size}) }}"
        api.expect(f"batchSize literal {size}", await api.answer(literal, token=api.admin), "BAD_USER_INPUT")
    # Without DeleteSession: FORBIDDEN, unless the value is no Int at all (coercion precedes execution).
    api.expect("guest batchSize -1", await api.answer(CLEAN, {"n": -1}, token=api.guest), "FORBIDDEN")
    api.expect("guest batchSize 2**31", await api.answer(CLEAN, {"n": 2**31}, token=api.guest), "BAD_USER_INPUT")
    api.expect("admin batchSize 1", await api.answer(CLEAN, {"n": 1}, token=api.admin), {"cleanExpiredSessions": 0})
    api.assert_all_expected()


# -- Ids that only look like numbers ------------------------------------------------------------------

MALFORMED_IDS = ["-1", "1e9", "0x10", "١٢٣", "１", "+1", "1.0", "", " ", "9" * 41, "1\x00", f"1{SURROGATE}", "1 2", 1.5]
NAMELESS_IDS = ["99999999999999999999", "0", "2147483648", "000", "9" * 40, 2**63, 0, 1e10]

ID_OPERATIONS = {
    "setActiveChannel": ("mutation($i: ID!) { setActiveChannel(channelId: $i) { id } }", "guest"),
    "setActiveOrder": ("mutation($i: ID!) { setActiveOrder(orderId: $i) { id } }", "guest"),
    "deleteSessionsByUser": ("mutation($i: ID!) { deleteSessionsByUser(userId: $i) }", "admin"),
    "deleteSessionsByActiveOrderId": (
        "mutation($i: ID!) { deleteSessionsByActiveOrderId(activeOrderId: $i) }",
        "admin",
    ),
    "createNewAuthenticatedSession": (
        'mutation($i: ID!) { createNewAuthenticatedSession(userId: $i, authenticationStrategyName: "x") { id } }',
        "admin",
    ),
    "updateRole": ("mutation($i: ID!) { updateRole(input: {id: $i}) { id } }", "admin"),
    "createRole.channelIds": (
        'mutation($i: ID!) { createRole(input: {code: "r", permissions: [], channelIds: [$i]}) { id } }',
        "admin",
    ),
    "createUser.roleIds": ('mutation($i: ID!) { createUser(input: {identifier: "u", roleIds: [$i]}) { id } }', "admin"),
    "updateUser": ("mutation($i: ID!) { updateUser(input: {id: $i}) { id } }", "admin"),
    "deleteUser": ("mutation($i: ID!) { deleteUser(id: $i) { success } }", "admin"),
}


async def test_ids_that_are_no_decimal_number_are_bad_user_input(api: Api) -> None:
    for operation, (query, persona) in ID_OPERATIONS.items():
        token = api.admin if persona == "admin" else api.guest
        for value in MALFORMED_IDS:
            api.expect(f"{operation}({value!r})", await api.answer(query, {"i": value}, token=token), "BAD_USER_INPUT")
    api.assert_all_expected()


async def test_ids_beyond_any_row_are_entity_not_found(api: Api) -> None:
    for operation, (query, persona) in ID_OPERATIONS.items():
        token = api.admin if persona == "admin" else api.guest
        for value in NAMELESS_IDS:
            api.expect(
                f"{operation}({value!r})", await api.answer(query, {"i": value}, token=token), "ENTITY_NOT_FOUND"
            )
        for literal in ('"99999999999999999999"', "99999999999999999999"):  # an ID literal may be an Int
            inline = query.replace("mutation($i: ID!)", "mutation").replace("$i", literal)
            api.expect(f"{operation} literal {literal}", await api.answer(inline, token=token), "ENTITY_NOT_FOUND")
    api.assert_all_expected()


async def test_hostile_ids_without_the_permission_are_forbidden(api: Api) -> None:
    for operation, (query, persona) in ID_OPERATIONS.items():
        for value in ["-1", "99999999999999999999", "١٢٣", f"1{SURROGATE}"]:
            if persona == "admin":
                api.expect(
                    f"guest {operation}({value!r})", await api.answer(query, {"i": value}, token=api.guest), "FORBIDDEN"
                )
            api.expect(f"nobody {operation}({value!r})", await api.answer(query, {"i": value}), "FORBIDDEN")
    api.assert_all_expected()


async def test_an_id_with_surrounding_white_space_names_the_same_row(api: Api) -> None:
    # parse_id trims white space: " 1" and "1\n" are channel 1, as "1" is.
    query = "mutation($i: ID!) { setActiveChannel(channelId: $i) { activeChannelId } }"
    for value in [" 1", "1\n", "\t1 "]:
        answer = await api.answer(query, {"i": value}, token=api.guest)
        api.expect(repr(value), answer, {"setActiveChannel": {"activeChannelId": "1"}})
    api.assert_all_expected()


# -- Long and unstorable strings in the inputs --------------------------------------------------------

TOO_LONG = {
    "channel code 65": (CREATE_CHANNEL, {"code": "c" * 65}),
    "channel code 10000": (CREATE_CHANNEL, {"code": "c" * 10_000}),
    "channel code blank": (CREATE_CHANNEL, {"code": " "}),
    "channel token 129": (CREATE_CHANNEL, {"code": "ok-code", "token": "t" * 129}),
    "channel token 10000": (CREATE_CHANNEL, {"code": "ok-code", "token": "t" * 10_000}),
    "user identifier 256": (CREATE_USER, {"identifier": "u" * 256}),
    "user identifier 10000": (CREATE_USER, {"identifier": "u" * 10_000, "password": "p"}),
    "user identifier empty": (CREATE_USER, {"identifier": ""}),
    "user password 1025": (CREATE_USER, {"identifier": "ok-user", "password": "p" * 1025}),
    "user password 50000": (CREATE_USER, {"identifier": "ok-user", "password": "p" * 50_000}),
    "role code 65": (CREATE_ROLE, {"code": "r" * 65, "permissions": [], "channelIds": []}),
    "role code 10000": (CREATE_ROLE, {"code": "r" * 10_000, "permissions": [], "channelIds": []}),
    "role description 256": (
        CREATE_ROLE,
        {"code": "ok", "description": "d" * 256, "permissions": [], "channelIds": []},
    ),
    "role description 50000": (
        CREATE_ROLE,
        {"code": "ok", "description": "d" * 50_000, "permissions": [], "channelIds": []},
    ),
    "updateRole description 10000": (UPDATE_ROLE, {"id": "1", "description": "d" * 10_000}),
}


async def test_strings_longer_than_their_columns_are_bad_user_input_or_forbidden(api: Api) -> None:
    for case, (query, value) in TOO_LONG.items():
        api.expect(f"admin: {case}", await api.answer(query, {"i": value}, token=api.admin), "BAD_USER_INPUT")
        api.expect(f"guest: {case}", await api.answer(query, {"i": value}, token=api.guest), "FORBIDDEN")
        api.expect(f"nobody: {case}", await api.answer(query, {"i": value}), "FORBIDDEN")
    for variant in ["v" * 65, "v" * 10_000, ""]:
        answer = await api.answer(ADD_ITEM, {"v": variant, "q": 1}, token=api.guest)
        api.expect(f"productVariantId of {len(variant)}", answer, "BAD_USER_INPUT")
    for strategy in ["s" * 65, "s" * 10_000, ""]:
        answer = await api.answer(IMPERSONATE, {"u": "1", "s": strategy}, token=api.admin)
        api.expect(f"authenticationStrategyName of {len(strategy)}", answer, "BAD_USER_INPUT")
    api.assert_all_expected()


UNSTORABLE_INPUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "channel code": (CREATE_CHANNEL, {"code": "{}"}),
    "channel token": (CREATE_CHANNEL, {"code": "ok-code", "token": "{}"}),
    "user identifier": (CREATE_USER, {"identifier": "{}"}),
    "role code": (CREATE_ROLE, {"code": "{}", "permissions": [], "channelIds": []}),
    "role description": (CREATE_ROLE, {"code": "ok-role", "description": "{}", "permissions": [], "channelIds": []}),
    "updateRole description": (UPDATE_ROLE, {"id": "1", "description": "{}"}),
    "updateUser identifier": (
        "mutation($i: UpdateUserInput!) { updateUser(input: $i) { id } }",
        {"id": "1", "identifier": "{}"},
    ),
}


async def test_text_no_database_can_store_is_bad_user_input(api: Api) -> None:
    """NUL (PostgreSQL text refuses it) and lone surrogates (no UTF-8): refused alike on every backend."""
    for text in NOT_STORABLE:
        for case, (query, template) in UNSTORABLE_INPUTS.items():
            value = {key: text if item == "{}" else item for key, item in template.items()}
            api.expect(f"{case} {text!r}", await api.answer(query, {"i": value}, token=api.admin), "BAD_USER_INPUT")
        variant = await api.answer(ADD_ITEM, {"v": text, "q": 1}, token=api.guest)
        api.expect(f"productVariantId {text!r}", variant, "BAD_USER_INPUT")
        strategy = await api.answer(IMPERSONATE, {"u": "1", "s": text}, token=api.admin)
        api.expect(f"authenticationStrategyName {text!r}", strategy, "BAD_USER_INPUT")
    api.assert_all_expected()


async def test_a_password_with_a_nul_or_a_lone_surrogate_is_hashed_and_verified_as_given(api: Api) -> None:
    # Only its hash is stored, so any text is a password; it must match itself and nothing else.
    logged_in, refused = (
        {"login": {"__typename": "CachedSession"}},
        {"login": {"__typename": "InvalidCredentialsError"}},
    )
    for number, password in enumerate(["p\x00ss", f"p{SURROGATE}ss"]):
        identifier = f"odd-password-{number}"
        await api.data(CREATE_USER, {"i": {"identifier": identifier, "password": password}}, token=api.admin)
        api.expect(f"right password {password!r}", await api.answer(LOGIN, {"u": identifier, "p": password}), logged_in)
        wrong = await api.answer(LOGIN, {"u": identifier, "p": password.replace("ss", "s")})
        api.expect(f"wrong password {password!r}", wrong, refused)
        if "changePassword" not in SDL:
            continue
        token = (await api.data(LOGIN_TOKEN, {"u": identifier, "p": password}))["login"]["token"]
        new = f"n{SURROGATE}\x00ew"
        for current, changed in ((f"x{SURROGATE}", False), (password, True)):
            answer = await api.answer(CHANGE_PASSWORD, {"c": current, "n": new}, token=token)
            api.expect(f"changePassword from {current!r}", answer, {"changePassword": {"success": changed}})
        api.expect(f"new password {new!r}", await api.answer(LOGIN, {"u": identifier, "p": new}), logged_in)
    api.assert_all_expected()


async def test_hostile_logins_count_against_the_login_limiter_without_failing(
    make_client: MakeClient, make_settings: SettingsFactory
) -> None:
    """With the default limiter on (10 attempts per identifier and per address), within the limit."""
    api = Api(await make_client(make_settings()))
    refused = {"login": {"__typename": "InvalidCredentialsError"}}
    for username in ["a\x00b", f"a{SURROGATE}b", "u" * 300, "u" * 10_000, "١٢٣"]:
        api.expect(
            f"limited login {username[:10]!r}", await api.answer(LOGIN, {"u": username, "p": SURROGATE}), refused
        )
    api.assert_all_expected()
