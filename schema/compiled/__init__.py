"""Compiled execution: GraphQL operations run from plans, with Strawberry's semantics, byte for byte.

Stock Strawberry runs every request through its extension hooks and graphql-core's `execute()`,
which walks the document again for each response: collecting fields, looking up definitions,
building resolve info and completing each value by type. For a small nested answer such as a
CachedSession that walk costs more than everything else in the request. As graphql-jit does for
graphql-js, this package compiles each validated document once, on first use, into a plan that
does only the per-request part: call the same resolvers (with the same permission extensions) in
the same order and with the same concurrency, complete values with the same scalar coercion, and
collect the same errors with the same paths and locations.

How a request flows (the view calls `CompiledPath.execute`, which answers None to mean "Strawberry"):

1. `documents.py`: `CachedDocuments` stands in for Strawberry's ParserCache, so parsed documents
   and their plans live in one bounded LRU (`DocumentCache`). A document counts as validated once
   Strawberry has gone on to execute it (only after every validation rule, the query limits and
   the introspection switch among them, passed); the first request of a document is always
   Strawberry's.
2. `executor.py`: for a validated document, pick the operation as graphql-core would, check the
   HTTP method may run it, coerce the variables with graphql-core (any error: Strawberry answers),
   and find or compile the plan for the values of the variables that @skip/@include read.
   `variables.py` coerces the variables, the signatures of each operation's String and ID
   variables derived once.
3. `compiler.py`: the plan, derived from the schema Strawberry built: fields grouped with
   graphql-core's `collect_fields`, each field's resolver as Strawberry made it (attribute read by
   Python name for plain fields, Strawberry's resolver with permission checks otherwise, or for a
   field without extensions the same resolver called without Strawberry's wrapper, `resolvers.py`),
   unions and interfaces resolved by the schema's own `resolve_type`/`is_type_of`.
4. `fields.py`, `completers.py`, `run.py`: running a plan, step for step as graphql-core's
   Executor (null propagation to the nearest nullable parent, errors dropped below a nulled
   position, serial mutations).
5. Errors are then handled as Strawberry handles them: `process_errors`, then the schema's
   MaskErrors extension (CodedErrors); the view's `process_result` and response are unchanged.
6. `lean.py`: a plain request (a POST with a JSON body or a GET with a query, Accept absent, `*/*`
   or application/json, one operation) whose operation has a plan skips Strawberry's view: the
   view's `respond_plain` (called by `run`, and for a POST of exactly application/json by
   server/graphql_lane.py before Starlette's routing) asks `LeanPath.respond`, which reads the
   request, prepares the plan and only then calls the view's own hooks in Strawberry's order (root
   value, sub-response, context, `process_result`) and writes the JSON with the view's
   `encode_json` as Strawberry's `create_response` would. Anything else, and any request it does
   not take, goes through Strawberry's view (to the plan or not).

What falls back to Strawberry: the first request of each document; documents that do not parse
or validate; introspection (`__schema`, `__type`); subscriptions; operation directives; variables
that do not coerce; an operation name that matches nothing; GET for a mutation; batches; and every
request when the schema has an extension, directive or executor the plan would not reproduce
(`CompiledPath.for_schema` returns None). `__typename`, aliases, named and inline fragments,
variables with defaults, @skip/@include, non-null and nullable fields, lists, enums, custom
scalars, unions and interfaces are compiled.
"""

from __future__ import annotations

from schema.compiled.documents import CachedDocuments, DocumentCache
from schema.compiled.executor import CompiledPath, allowed_operations

__all__ = ["CachedDocuments", "CompiledPath", "DocumentCache", "allowed_operations"]
