"""One identifier, however it is spelt: for uniqueness, login and the login limiter alike.

Before normalisation `alice@example.com`, `Alice@…`, `ALICE@…`, fullwidth `ａｌｉｃｅ@…`, NFC and NFD
`josé`, a trailing zero-width space and `ﬁle` beside `file` all became separate accounts, while the
login limiter lower-cased identifiers, so one account's logins touched another's window.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import User
from server.cache.login_limiters import LocalLoginLimiter
from server.cached_session import CachedSession
from server.services.auth import AuthService, InvalidCredentials
from server.services.errors import RateLimitedError, UserInputError
from server.services.identifiers import (
    IdentifierConflictError,
    fold_identifier,
    lookup_identifier,
    normalise_identifier,
    normalised_identifiers,
)
from server.services.login_limiter import limit_keys
from tests.services.support import Kit

PASSWORD = "correct horse battery staple"
#: (stored as, another spelling of it, the normal form of both)
SPELLINGS = [
    ("alice@example.com", "Alice@example.com", "alice@example.com"),
    ("alice@example.com", "ALICE@EXAMPLE.COM", "alice@example.com"),
    ("alice@example.com", "ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "alice@example.com"),
    ("alice@example.com", " alice@example.com\t", "alice@example.com"),
    ("jos\u00e9", "jose\u0301", "jos\u00e9"),
    ("file", "\ufb01le", "file"),
    ("straße", "STRASSE", "strasse"),
]
SPELLING_IDS = ["capital", "upper", "fullwidth", "spaces", "nfc-nfd", "ligature", "sharp-s"]
#: Characters nobody sees, each inside an otherwise valid identifier.
INVISIBLE = {
    "zero-width-space": "alice\u200b",
    "byte-order-mark": "\ufeffalice",
    "zero-width-joiner": "ali\u200dce",
    "soft-hyphen": "al\u00adice",
    "right-to-left-override": "alice\u202e",
    "isolate": "alice\u2066",
    "bell": "ali\x07ce",
    "line-separator": "ali\u2028ce",
    "hangul-filler": "ali\u3164ce",
    "variation-selector": "alice\ufe0f",
    "tag": "alice\U000e0041",
    "private-use": "alice\ue000",
    "unassigned": "alice\u0378",
}


# -- the normal form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "spelling", "normal"), SPELLINGS, ids=SPELLING_IDS)
def test_every_spelling_has_one_normal_form(stored: str, spelling: str, normal: str) -> None:
    assert (normalise_identifier(stored), normalise_identifier(spelling)) == (normal, normal)


@pytest.mark.parametrize("identifier", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_is_refused(identifier: str) -> None:
    with pytest.raises(UserInputError, match="invisible"):
        normalise_identifier(identifier)
    assert lookup_identifier(identifier) == ""
    assert fold_identifier(identifier) == "alice"


@given(st.text(max_size=40))
def test_the_normal_form_is_its_own_normal_form(text: str) -> None:
    folded = fold_identifier(text)
    assert fold_identifier(folded) == folded
    assert lookup_identifier(folded) in (folded, "")  # "" only when empty or too long


def test_the_normal_form_is_at_most_255_characters_after_expansion() -> None:
    # U+FDFA expands to 18 characters under NFKC: 15 of them are 270
    with pytest.raises(UserInputError, match="1 to 255"):
        normalise_identifier("\ufdfa" * 15)


# -- uniqueness and login ----------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "spelling", "normal"), SPELLINGS, ids=SPELLING_IDS)
async def test_another_spelling_of_a_taken_identifier_is_a_duplicate(
    kit: Kit, stored: str, spelling: str, normal: str
) -> None:
    await kit.users.create(stored, PASSWORD)
    bob = await kit.users.create("bob", PASSWORD)

    with pytest.raises(UserInputError, match="already exists"):
        await kit.users.create(spelling, PASSWORD)
    with pytest.raises(UserInputError, match="already exists"):
        await kit.users.update(bob.id, identifier=spelling)

    assert [user.identifier for user in await User.all().order_by("id")] == ["superadmin", normal, "bob"]


@pytest.mark.parametrize("identifier", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_an_identifier_with_an_invisible_character_is_refused_on_create_and_update(
    kit: Kit, identifier: str
) -> None:
    bob = await kit.users.create("bob", PASSWORD)

    with pytest.raises(UserInputError):
        await kit.users.create(identifier, PASSWORD)
    with pytest.raises(UserInputError):
        await kit.users.update(bob.id, identifier=identifier)

    assert [user.identifier for user in await User.all().order_by("id")] == ["superadmin", "bob"]


async def test_every_spelling_logs_in_to_the_one_account(kit: Kit) -> None:
    alice = await kit.users.create("Alice@Example.com", PASSWORD)

    outcomes = [
        await kit.auth.login(await kit.ctx(), spelling, PASSWORD)
        for spelling in (
            "alice@example.com",
            "ALICE@EXAMPLE.COM",
            "ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ",
            " Alice@Example.com ",
        )
    ]

    assert alice.identifier == "alice@example.com"
    assert [(o.user.id, o.user.identifier) for o in outcomes if isinstance(o, CachedSession) and o.user] == [
        (alice.id, "alice@example.com")
    ] * 4


@pytest.mark.parametrize("identifier", ["alice\u200b", "\u202ealice", "ali\x00ce"], ids=["zwsp", "rlo", "nul"])
async def test_a_login_with_an_invisible_character_finds_nobody(kit: Kit, identifier: str) -> None:
    await kit.users.create("alice", PASSWORD)

    assert await kit.auth.login(await kit.ctx(), identifier, PASSWORD) == InvalidCredentials()


# -- the login limiter -------------------------------------------------------------------------------


def test_every_spelling_counts_against_one_limiter_window() -> None:
    spellings = [
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        "ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ",
        "alice@example.com\u200b",
    ]

    keys = {limit_keys(spelling, None)[0] for spelling in spellings}

    assert len(keys) == 1
    assert limit_keys("jose\u0301", None) == limit_keys("JOS\u00c9", None)
    assert limit_keys("\ufb01le", None) == limit_keys("FILE", None)


async def test_failed_attempts_under_other_spellings_lock_the_account_out(kit: Kit) -> None:
    # given alice, and a limit of 3 attempts per identifier
    await kit.users.create("alice@example.com", PASSWORD)
    auth = AuthService(kit.sessions, require_verification=True, limiter=LocalLoginLimiter(3, 60.0))

    # when 3 wrong passwords come under 3 other spellings
    for spelling in ("ALICE@EXAMPLE.COM", "ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "alice@example.com\u200b"):
        assert await auth.login(await kit.ctx(), spelling, "wrong") == InvalidCredentials()

    # then the account is locked out under every spelling
    with pytest.raises(RateLimitedError):
        await auth.login(await kit.ctx(), "alice@example.com", PASSWORD)
    with pytest.raises(RateLimitedError):
        await auth.login(await kit.ctx(), "Alice@Example.com", PASSWORD)


# -- the migration of stored identifiers (its runs on a database: tests/test_data_migrations.py) ------


def test_stored_identifiers_are_given_their_normal_form() -> None:
    stored = [(1, "superadmin"), (2, "Alice@Example.com"), (3, "bob\u200b"), (4, "jose\u0301")]

    assert normalised_identifiers(stored) == {2: "alice@example.com", 3: "bob", 4: "jos\u00e9"}


def test_colliding_stored_identifiers_are_all_reported_and_none_merged() -> None:
    stored = [(1, "alice"), (2, "bob"), (3, "ALICE"), (4, "ａｌｉｃｅ"), (5, "\u200b"), (6, "Bob "), (7, "carol")]

    with pytest.raises(IdentifierConflictError) as raised:
        normalised_identifiers(stored)

    assert str(raised.value) == (
        "user identifiers cannot all be normalised: users 1, 3, 4 would all be 'alice'; users 2, 6 would all be"
        " 'bob'; user(s) 5 would have an empty identifier. Give each of these users a distinct visible"
        " identifier of 1 to 255 characters, then migrate again"
    )
