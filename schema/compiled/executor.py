"""The compiled path's entry: find a request's plan, run it, and finish the result as Strawberry does."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from graphql import OperationType as GraphQLOperationType
from strawberry.execution import optimized_is_awaitable as is_awaitable
from strawberry.extensions import AddValidationRules, MaskErrors, MaxTokensLimiter, ValidationCache
from strawberry.http import GraphQLRequestData
from strawberry.schema import Schema
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from schema.compiled.compiler import MAX_VARIANTS, Compiler, OperationPlan, Unsupported, condition_variables
from schema.compiled.documents import CachedDocument, CachedDocuments, DocumentCache
from schema.compiled.fields import execute_fields, execute_fields_serially
from schema.compiled.private import StrawberryGraphQLCoreExecutionContext, mask_errors, process_errors
from schema.compiled.resolvers import DirectResolvers
from schema.compiled.run import Run
from schema.compiled.variables import OperationVariables

#: Extensions whose effect the compiled path keeps: parsing, validation and limits hold for a
#: document once Strawberry has validated it, and error masking is applied to the plan's errors.
KNOWN_EXTENSIONS = (MaxTokensLimiter, AddValidationRules, ValidationCache, CachedDocuments, MaskErrors)
#: Strawberry's operation type of each of graphql-core's (Strawberry's is built from the other's value).
OPERATION_TYPES = {operation: OperationType(operation.value) for operation in GraphQLOperationType}
_MISSING = object()
_CONDITIONS = "conditions"


def allowed_operations(method: str, allow_queries_via_get: bool) -> set[OperationType]:
    """What Strawberry's execute_single lets this HTTP method run."""
    allowed = OperationType.from_http(method)  # type: ignore[arg-type]
    if not allow_queries_via_get and method == "GET":
        allowed = allowed - {OperationType.QUERY}
    return allowed


class CompiledPath:
    """Plans for the validated documents of one schema; `execute` answers None when Strawberry must."""

    def __init__(self, schema: Schema, documents: DocumentCache) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.documents = documents
        self.resolvers = DirectResolvers(schema)

    @classmethod
    def for_schema(cls, schema: object) -> CompiledPath | None:
        """The compiled path of `schema`, or None when the schema does something a plan would not
        (an unknown extension or one that wraps resolvers, custom directives, another executor)."""
        if (
            not isinstance(schema, Schema)
            or schema.execution_context_class is not StrawberryGraphQLCoreExecutionContext
        ):
            return None
        if schema.directives or schema.config.enable_experimental_incremental_execution:
            return None
        extensions = schema.get_extensions()
        if any(not isinstance(each, KNOWN_EXTENSIONS) or each._implements_resolve() for each in extensions):
            return None
        caches = [each.cache for each in extensions if isinstance(each, CachedDocuments)]
        if len(caches) != 1 or sum(isinstance(each, MaskErrors) for each in extensions) > 1:
            return None
        return cls(schema, caches[0])

    async def execute(
        self, request: GraphQLRequestData, allowed: Collection[OperationType], context: Any, root_value: Any
    ) -> ExecutionResult | None:
        prepared = self.prepare(request, allowed)
        if prepared is None:
            return None
        plan, variables = prepared
        return await self.run(plan, variables, request.extensions, context, root_value)

    async def run(
        self,
        plan: OperationPlan,
        variables: Any,
        operation_extensions: dict[str, Any] | None,
        context: Any,
        root_value: Any,
    ) -> ExecutionResult:
        """The result of a prepared plan, its errors processed and masked as Strawberry's would be."""
        run = Run(
            self.graphql_schema, plan.operation, plan.fragments, variables, context, root_value, operation_extensions
        )
        data: Any
        try:
            if plan.serially:
                data = execute_fields_serially(run, plan.fields, root_value)
            else:
                data = execute_fields(run, plan.fields, root_value, None)
            if is_awaitable(data):
                data = await data
        except GraphQLError as error:
            run.errors.add(error, None)
            data = None
        except Exception as error:  # as Strawberry's execute: an error in the result, no traceback
            run.errors.add(GraphQLError(str(error), original_error=error), None)
            data = None
        result = ExecutionResult(data=data, errors=run.errors.errors or None)
        if result.errors:
            process_errors(self.schema, result.errors)
            for extension in self.schema.get_extensions():
                if isinstance(extension, MaskErrors):
                    mask_errors(extension, result)
        result.extensions = {}
        return result

    def prepare(
        self, request: GraphQLRequestData, allowed: Collection[OperationType]
    ) -> tuple[OperationPlan, Any] | None:
        """The plan and coerced variables, or None where Strawberry answers (and reports any error)."""
        query, name, raw = request.query, request.operation_name, request.variables
        if not isinstance(query, str) or not (name is None or isinstance(name, str)) or request.protocol != "http":
            return None
        entry = self.documents.get(query)
        if entry is None or not entry.validated:
            return None
        operation = _operation(entry.document, name)
        if operation is None or OPERATION_TYPES[operation.operation] not in allowed:
            return None
        operation_name = operation.name.value if operation.name else None
        definitions = entry.variables.get(operation_name)
        if definitions is None:
            definitions = entry.variables[operation_name] = OperationVariables(
                self.graphql_schema, operation.variable_definitions or ()
            )
        variables = definitions.coerce(raw or {})
        if isinstance(variables, list):
            return None
        conditions = entry.plans.get(_CONDITIONS)
        if conditions is None:
            conditions = entry.plans[_CONDITIONS] = condition_variables(entry.document)
        key = (operation_name, *(variables.coerced.get(n, _MISSING) for n in conditions))
        plan = entry.plans.get(key, _MISSING)
        if plan is _MISSING:
            plan = self.compile(entry, operation, variables, key)
        return None if plan is None else (plan, variables)

    def compile(self, entry: CachedDocument, operation: OperationDefinitionNode, variables: Any, key: object) -> Any:
        if len(entry.plans) > MAX_VARIANTS:
            return None
        try:
            plan: OperationPlan | None = Compiler(
                self.graphql_schema, entry.document, operation, self.resolvers
            ).compile(variables)
        except (Unsupported, RecursionError):
            plan = None
        entry.plans[key] = plan
        return plan


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core's Executor.build would pick; None where it reports an error."""
    found: OperationDefinitionNode | None = None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if name is None:
                if found is not None:
                    return None
                found = definition
            elif definition.name is not None and definition.name.value == name:
                found = definition
    return found
