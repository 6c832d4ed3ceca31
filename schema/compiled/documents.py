"""Parsed documents and their compiled plans, in one bounded cache keyed by the query text.

`CachedDocuments` takes the place of Strawberry's ParserCache: it parses through this cache, and
marks a document as validated when Strawberry goes on to execute it (which it does only once every
validation rule has passed). Only a validated document is ever compiled. Evicting a document drops
its plans with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, parse
from strawberry.extensions import SchemaExtension


class CachedDocument:
    """A parsed document; `validated` once Strawberry executed it; its plans by operation and
    @skip/@include values (None: that operation falls back to Strawberry); its operations' variable
    definitions prepared for coercion, by operation name."""

    __slots__ = ("document", "options", "plans", "validated", "variables")

    def __init__(self, document: DocumentNode, options: tuple[tuple[str, Any], ...]) -> None:
        self.document = document
        self.options = options
        self.validated = False
        self.plans: dict[object, Any] = {}
        self.variables: dict[str | None, Any] = {}


class DocumentCache:
    """A least-recently-used map from query text to CachedDocument, at most `maxsize` entries."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> CachedDocument | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def parse(self, query: str, options: dict[str, Any]) -> DocumentNode:
        """The document of `query`, parsed with `options` (as ParserCache does, errors are not cached)."""
        key = tuple(sorted(options.items()))
        entry = self.get(query)
        if entry is None or entry.options != key:
            entry = CachedDocument(parse(query, **options), key)
            self._entries[query] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return entry.document

    def mark_validated(self, query: str, document: DocumentNode) -> None:
        entry = self._entries.get(query)
        if entry is not None and entry.document is document:
            entry.validated = True


class CachedDocuments(SchemaExtension):
    """Strawberry's ParserCache, over a DocumentCache shared with the compiled path."""

    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            context.graphql_document = self.cache.parse(context.query, dict(context.parse_options))
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is not None:
            self.cache.mark_validated(context.query, context.graphql_document)
        yield
