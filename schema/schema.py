"""The one place the GraphQL schema is assembled (server, SDL export and tests)."""

from __future__ import annotations

from collections.abc import Callable

from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from graphql.error import GraphQLError
from strawberry import Schema
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.compiled import CachedDocuments, DocumentCache
from schema.errors import CodedErrors
from schema.limits import limits_rule
from schema.mutations import Mutation
from schema.queries import Query
from schema.scalars import SCALARS
from server.settings import Settings

#: Distinct query documents kept parsed (with their plans) and validated; bounded, unlike Strawberry's defaults.
DOCUMENT_CACHE_SIZE = 512


class SessionSchema(Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Errors are masked and logged by CodedErrors; Strawberry's own logging would print tracebacks.
        return None


def limit_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The alias, depth and introspection rules, built once per schema: a rule class per request
    would make every ValidationCache key new. (Strawberry's own alias and depth limiters take time
    exponential in nested fragment spreads: see schema/limits.py.)
    """
    rules: list[type[ASTValidationRule]] = [limits_rule(settings.max_query_aliases, settings.max_query_depth)]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def build_schema(settings: Settings | None = None) -> Schema:
    """The schema with the query limits of `settings` (defaults when None; the SDL does not depend on them)."""
    settings = settings or Settings()
    rules = limit_rules(settings)
    max_tokens = settings.max_query_tokens
    documents = DocumentCache(DOCUMENT_CACHE_SIZE)  # parsed documents and their plans (schema/compiled)
    # Factories: an extension instance holds the state of one request.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: AddValidationRules(rules),
        lambda: CachedDocuments(documents),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        CodedErrors,
    ]
    config = StrawberryConfig(scalar_map=SCALARS)
    return SessionSchema(query=Query, mutation=Mutation, extensions=extensions, config=config)
