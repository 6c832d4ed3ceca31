"""The exported SDL keeps every promise of the shared contract, and the committed copy is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLSchema,
    build_ast_schema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    parse,
)

from schema.schema import build_schema as build_strawberry_schema

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_SDL = Path(__file__).resolve().parents[2] / "shared/contract/schema.graphql"
#: The session-management extension of the contract (issue 11), checked together with schema.graphql.
SESSION_MANAGEMENT_SDL = CONTRACT_SDL.with_name("session-management.graphql")
COMMITTED_SDL = REPO_ROOT / "schema.graphql"
EXPORT_COMMAND = "python -m server export-schema --output schema.graphql"


def _exported_sdl() -> str:
    return build_strawberry_schema().as_str() + "\n"


@pytest.fixture(scope="module")
def contract() -> GraphQLSchema:
    if not CONTRACT_SDL.is_file():
        pytest.skip(f"the shared contract is not checked out at {CONTRACT_SDL}")
    return build_schema(CONTRACT_SDL.read_text())


@pytest.fixture(scope="module")
def session_management_contract() -> GraphQLSchema:
    """schema.graphql extended by session-management.graphql."""
    if not SESSION_MANAGEMENT_SDL.is_file():
        pytest.skip(f"the session-management contract is not checked out at {SESSION_MANAGEMENT_SDL}")
    document = parse(CONTRACT_SDL.read_text() + "\n" + SESSION_MANAGEMENT_SDL.read_text())
    return build_ast_schema(document)


@pytest.fixture(scope="module")
def ours() -> GraphQLSchema:
    return build_schema(_exported_sdl())


def test_exported_schema_has_no_breaking_changes_against_the_contract(
    contract: GraphQLSchema, ours: GraphQLSchema
) -> None:
    changes = find_breaking_changes(contract, ours)
    assert changes == [], "\n".join(f"{change.type.name}: {change.description}" for change in changes)


def test_exported_schema_has_no_dangerous_changes_against_the_contract(
    contract: GraphQLSchema, ours: GraphQLSchema
) -> None:
    changes = find_dangerous_changes(contract, ours)
    assert changes == [], "\n".join(f"{change.type.name}: {change.description}" for change in changes)


def test_every_contract_operation_is_served(contract: GraphQLSchema, ours: GraphQLSchema) -> None:
    for root in ("Query", "Mutation"):
        contract_type = contract.get_type(root)
        our_type = ours.get_type(root)
        assert contract_type is not None and our_type is not None
        missing = set(contract_type.fields) - set(our_type.fields)  # type: ignore[attr-defined]
        assert missing == set(), f"{root} lacks {sorted(missing)}"


def test_committed_schema_matches_the_code() -> None:
    assert COMMITTED_SDL.is_file(), f"schema.graphql is missing: run `{EXPORT_COMMAND}`"
    assert COMMITTED_SDL.read_text() == _exported_sdl(), f"schema.graphql is out of date: run `{EXPORT_COMMAND}`"


def test_committed_schema_has_no_breaking_changes_against_the_contract(contract: GraphQLSchema) -> None:
    committed = build_schema(COMMITTED_SDL.read_text())
    assert find_breaking_changes(contract, committed) == []


def test_exported_schema_keeps_the_session_management_contract(
    session_management_contract: GraphQLSchema, ours: GraphQLSchema
) -> None:
    changes = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(session_management_contract, ours)]
    changes += [f"{c.type.name}: {c.description}" for c in find_dangerous_changes(session_management_contract, ours)]
    assert changes == [], "\n".join(changes)


def test_every_session_management_operation_is_served(
    session_management_contract: GraphQLSchema, ours: GraphQLSchema
) -> None:
    for root in ("Query", "Mutation"):
        contract_type = session_management_contract.get_type(root)
        our_type = ours.get_type(root)
        assert contract_type is not None and our_type is not None
        missing = set(contract_type.fields) - set(our_type.fields)  # type: ignore[attr-defined]
        assert missing == set(), f"{root} lacks {sorted(missing)}"
