"""The one place the GraphQL schema is assembled (server, SDL export and tests)."""

from __future__ import annotations

from graphql.error import GraphQLError
from strawberry import Schema
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import ExecutionContext

from schema.errors import CodedErrors
from schema.mutations import Mutation
from schema.queries import Query

#: Distinct query documents kept parsed and validated; bounded, unlike Strawberry's defaults.
DOCUMENT_CACHE_SIZE = 512


class SessionSchema(Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Errors are masked and logged by CodedErrors; Strawberry's own logging would print tracebacks.
        return None


def build_schema() -> Schema:
    return SessionSchema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
            lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
            CodedErrors,
        ],
    )
