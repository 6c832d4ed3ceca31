"""User identifiers: one normal form for uniqueness, login and the login limiter (migrations use it too).

An identifier is compared in its normal form: NFKC, case-folded (so `Alice`, `ALICE`, fullwidth
`ａｌｉｃｅ`, NFC and NFD `josé`, `ﬁle` and `file` are each one identifier), without white space at
either end. Characters nobody can see or type reliably are refused where an identifier is chosen:
control and format characters (zero-width spaces and joiners, the byte order mark, bidirectional
controls), private-use, unassigned and surrogate code points, line and paragraph separators, and the
other default-ignorable code points (variation selectors, Hangul fillers, ...).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

#: users.identifier is a CharField(max_length=255); the limit applies to the normal form.
MAX_IDENTIFIER_LENGTH = 255

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Default_Ignorable_Code_Point characters outside the refused categories (Unicode DerivedCoreProperties).
_IGNORABLE = frozenset(
    chr(code)
    for code in (
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x180B,
        0x180C,
        0x180D,
        0x180F,
        0x3164,
        0xFFA0,
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    )
)


def is_invisible(character: str) -> bool:
    """Whether one character is of the kind an identifier may not hold."""
    return character in _IGNORABLE or unicodedata.category(character) in _REFUSED_CATEGORIES


def fold_identifier(text: str) -> str:
    """The normal form of `text` with its invisible characters dropped; never raises.

    What the login limiter counts attempts under, and what migration 0004 gave stored identifiers.
    """
    visible = "".join(character for character in text if not is_invisible(character))
    # NFKC again after case folding: folding can leave text that is not in NFKC.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold()).strip()


class IdentifierConflictError(Exception):
    """Stored identifiers that cannot all take their normal form: some would become one, or unusable."""


def normalised_identifiers(users: Iterable[tuple[int, str]]) -> dict[int, str]:
    """For stored (id, identifier) pairs, the new identifier of each user whose identifier changes.

    Nothing is merged and nothing dropped: if two users would end with one identifier, or one with an
    empty or over-long identifier, IdentifierConflictError lists them all (one line) instead.
    """
    by_identifier: dict[str, list[int]] = {}
    changes: dict[int, str] = {}
    for user_id, stored in users:
        identifier = fold_identifier(stored)
        by_identifier.setdefault(identifier, []).append(user_id)
        if identifier != stored:
            changes[user_id] = identifier
    problems: list[str] = []
    for identifier, ids in sorted(by_identifier.items(), key=lambda item: min(item[1])):
        named = ", ".join(map(str, sorted(ids)))
        if not identifier:
            problems.append(f"user(s) {named} would have an empty identifier")
        elif len(identifier) > MAX_IDENTIFIER_LENGTH:
            problems.append(f"user(s) {named} would have an identifier of {len(identifier)} characters")
        elif len(ids) > 1:
            problems.append(f"users {named} would all be {identifier!r}")
    if problems:
        raise IdentifierConflictError(
            f"user identifiers cannot all be normalised: {'; '.join(problems)}. Give each of these users a"
            f" distinct visible identifier of 1 to {MAX_IDENTIFIER_LENGTH} characters, then migrate again"
        )
    return changes
