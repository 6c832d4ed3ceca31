"""Download the playground's pinned npm packages and rewrite the files the project ships from them.

    python -m server.playground.refresh                   # the pinned versions, verified
    python -m server.playground.refresh --check           # compare the shipped files, write nothing
    python -m server.playground.refresh --pin react=18.3.1  # move a pin, trusting the registry's integrity

sources.json holds, per package, the version, the registry tarball and its integrity (the npm
`dist.integrity`, sha512); a tarball whose digest differs is refused. For every file taken from a
tarball it records where it went and its SHA-256, which tests/test_playground.py checks offline.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources.json"
TIMEOUT = 60.0


class RefreshError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.playground.refresh", description="Refresh the playground's files from the npm registry."
    )
    parser.add_argument("--check", action="store_true", help="verify the shipped files against the tarballs only")
    parser.add_argument("--pin", action="append", default=[], metavar="NAME=VERSION", help="move a package's pin")
    arguments = parser.parse_args(argv)
    try:
        sources = json.loads(SOURCES.read_text())
        for pin in arguments.pin:
            repin(sources, pin)
        changed = [path for package in sources["packages"] for path in refresh(package, check=arguments.check)]
    except RefreshError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.check:
        print("the shipped files match the pinned tarballs" if not changed else f"differ: {', '.join(changed)}")
        return 1 if changed else 0
    SOURCES.write_text(json.dumps(sources, indent=2) + "\n")
    print(f"updated: {', '.join(changed)}" if changed else "every file already matched its pinned tarball")
    return 0


def repin(sources: dict[str, Any], pin: str) -> None:
    """Point `name` at `version`: its tarball and integrity as the registry states them."""
    name, _, version = pin.partition("=")
    package = next((package for package in sources["packages"] if package["name"] == name), None)
    if package is None or not version:
        raise RefreshError(f"--pin {pin!r}: expected NAME=VERSION with NAME one of the packages in {SOURCES.name}")
    metadata = json.loads(download(f"{sources['registry']}/{name}/{version}"))
    package.update(version=version, tarball=metadata["dist"]["tarball"], integrity=metadata["dist"]["integrity"])


def refresh(package: dict[str, Any], check: bool) -> list[str]:
    """Verify the package's tarball and write (or, with `check`, compare) its files; the changed paths."""
    tarball = download(package["tarball"])
    algorithm, _, expected = package["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise RefreshError(f"{package['tarball']}: {algorithm} is {actual}, sources.json pins {expected}")
    changed: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for entry in package["files"]:
            member = archive.extractfile(entry["from"])
            if member is None:
                raise RefreshError(f"{package['tarball']} has no file {entry['from']}")
            content = member.read()
            target = HERE / entry["to"]
            if not target.exists() or target.read_bytes() != content:
                changed.append(entry["to"])
                if not check:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
            entry["sha256"] = hashlib.sha256(content).hexdigest()
    return changed


def download(url: str) -> bytes:
    if not url.startswith("https://"):
        raise RefreshError(f"refusing a download that is not https: {url}")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            body: bytes = response.read()
            return body
    except OSError as error:
        raise RefreshError(f"{url}: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
