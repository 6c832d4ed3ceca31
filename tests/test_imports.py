"""Guard: our top-level packages resolve inside the repository, never to a PyPI namesake."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = ("schema", "server", "models")


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_package_resolves_inside_the_repository(name: str) -> None:
    spec = importlib.util.find_spec(name)
    assert spec is not None, f"{name} is not importable from {REPO_ROOT}"
    assert spec.origin is not None, f"{name} resolves to a namespace package, not ./{name}"
    origin = Path(spec.origin).resolve()
    assert origin.is_relative_to(REPO_ROOT / name), f"{name} resolves to {origin}, outside {REPO_ROOT / name}"


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_imported_module_is_ours(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == REPO_ROOT / name / "__init__.py"


def test_pypi_schema_distribution_is_not_installed() -> None:
    try:
        distribution = importlib.metadata.distribution("schema")
    except importlib.metadata.PackageNotFoundError:
        return
    pytest.fail(
        f"PyPI package 'schema' is installed and collides with ./schema (version {distribution.version})",
        pytrace=False,
    )


def test_no_installed_distribution_ships_our_top_level_names() -> None:
    owners = {
        name: dists for name, dists in importlib.metadata.packages_distributions().items() if name in OUR_PACKAGES
    }
    assert owners == {}, f"installed distributions provide {owners}, colliding with ./schema, ./server or ./models"


def test_outside_the_repository_our_names_are_not_importable(tmp_path: Path) -> None:
    # The project installs no packages: code is imported from the repository root only.
    probe = (
        "import importlib.util, json, sys; "
        "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in sys.argv[1:]}))"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe, *OUR_PACKAGES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(OUR_PACKAGES, False)
