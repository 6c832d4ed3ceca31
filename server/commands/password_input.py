"""A new password as an operator gives it: typed twice at a prompt that does not echo, or piped in."""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from server.commands.base import CommandError


def read_new_password(stdin: TextIO | None = None) -> str:
    """From a terminal: asked twice without echo (getpass). Otherwise: the first line of standard
    input, without its line ending (anything after it is ignored)."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat the new password: ") != password:
            raise CommandError("the two passwords differ: nothing was changed")
        return password
    line = stdin.readline()
    if not line:
        raise CommandError("no password on standard input: pipe one line, or run the command in a terminal")
    return line.removesuffix("\n").removesuffix("\r")
