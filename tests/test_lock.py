"""requirements.lock (what `make install` installs) still pins what pyproject.toml asks for: a changed
dependency without `make lock` fails here rather than leaving an install without it."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.live_server import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _declared() -> list[Requirement]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    extras = project["optional-dependencies"]
    return [Requirement(text) for text in [*project["dependencies"], *extras["test"], *extras["dev"]]]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_pin_carries_a_hash() -> None:
    text = LOCK.read_text()
    pinned = [line for line in text.splitlines() if _PIN.match(line)]
    assert pinned and all(line.endswith("\\") for line in pinned)  # each pin continues with its hashes
    assert text.count("==") == len(pinned)


@pytest.mark.parametrize("requirement", _declared(), ids=str)
def test_every_declared_requirement_is_pinned_within_its_bounds(requirement: Requirement) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        pytest.skip(f"{requirement} does not apply here")
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {requirement.name}=={pins[name]}, outside {requirement.specifier}: run `make lock`"
    )
