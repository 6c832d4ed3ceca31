"""The `.env` file of the working directory: settings kept beside the service, under the real environment.

One `KEY=VALUE` a line. Blank lines and lines starting with `#` are skipped; `export KEY=VALUE` is
read as `KEY=VALUE`. A value may be quoted: in single quotes it is taken as it is, in double quotes
`\\n`, `\\t`, `\\"` and `\\\\` are unescaped; unquoted, it ends at a ` #` comment and its outer white
space is dropped. A value spans one line. A variable set in the real environment (even to "") wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

ENV_FILE = ".env"
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class EnvFileError(ValueError):
    """Lines of a `.env` file that are not `KEY=VALUE`: one message a line, never showing a value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def environment(environ: Mapping[str, str], directory: Path) -> dict[str, str]:
    """`environ` over the variables of `directory/.env`, if that file exists."""
    path = directory / ENV_FILE
    if not path.is_file():
        return dict(environ)
    return {**read_env_file(path), **environ}


def read_env_file(path: Path) -> dict[str, str]:
    """The variables `path` sets (the last one wins); EnvFileError naming every line it cannot read."""
    values: dict[str, str] = {}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise EnvFileError([f"{path.name}: cannot be read ({type(error).__name__})"]) from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        value = _value(match.group(2)) if match else None
        if match is None or value is None:
            problems.append(f"{path.name} line {number}: expected KEY=VALUE (a quoted value closes on its line)")
            continue
        values[match.group(1)] = value
    if problems:
        raise EnvFileError(problems)
    return values


def _value(raw: str) -> str | None:
    """The value of `raw` (what follows `=`), or None when a quote is left open or followed by more than a comment."""
    if raw[:1] == "'":
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 and _only_comment(raw[end + 1 :]) else None
    if raw[:1] == '"':
        characters: list[str] = []
        index = 1
        while index < len(raw):
            character = raw[index]
            if character == "\\" and index + 1 < len(raw):
                following = raw[index + 1]
                characters.append(_ESCAPES.get(following, "\\" + following))
                index += 2
                continue
            if character == '"':
                return "".join(characters) if _only_comment(raw[index + 1 :]) else None
            characters.append(character)
            index += 1
        return None
    comment = re.search(r"\s#", raw)
    return (raw[: comment.start()] if comment else raw).strip()


def _only_comment(rest: str) -> bool:
    rest = rest.strip()
    return not rest or rest.startswith("#")
