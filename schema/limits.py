"""The alias, depth and introspection limits as one validation rule, in time linear in the document.

Strawberry's MaxAliasesLimiter and QueryDepthLimiter walk a fragment again at every spread, so a
700-byte document of fragments that each spread the next one twice costs 2^n steps (n = 18: one
second of event loop). Here every fragment is measured once, before the fragments that spread it,
and its measure is added at each spread. The messages are Strawberry's.

Strawberry's depth limiter skips everything below `__schema` and `__type`, where one small document
could ask for the whole schema many times over (15 aliased `__schema { types { fields { ... } } }`).
Introspection is held to the shape of an honest introspection query (GraphiQL's, graphql-core's
`get_introspection_query()`): `__schema`, `__type`, `__Schema.types` and the `__Type` fields that
multiply the answer (`fields`, `inputFields`, `interfaces`, `possibleTypes`) at most once each per
operation, aliases and fragment spreads included, and bounds on the depth and on the number of
introspection fields. At the default limits the costliest passing document measured (each
field of each type with 15 aliased type references) executes in about 35 ms here, the standard
introspection query in about 10 ms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)

#: Fields that start an introspection answer (both on the query root type).
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
#: Introspection fields an operation may ask for once: each repeat multiplies the answer.
ASKED_ONCE = {
    "__schema": "__schema",
    "__type": "__type",
    "types": "__Schema.types",
    "fields": "__Type.fields",
    "inputFields": "__Type.inputFields",
    "interfaces": "__Type.interfaces",
    "possibleTypes": "__Type.possibleTypes",
}
#: GraphiQL's introspection query (graphql-core's, type_depth 9) is 15 levels deep and asks for 232
#: fields with every option on; the deepest one these bounds let through (type_depth 14) asks for 322.
INTROSPECTION_MAX_DEPTH = 20
INTROSPECTION_MAX_FIELDS = 400


@dataclass
class Measure:
    """What a selection set asks for, with every fragment spread counted where it is spread."""

    aliases: int = 0
    #: nesting below this selection set, introspection left out, as Strawberry counts it
    depth: int = 0
    introspection_fields: int = 0
    #: levels of introspection fields at and below this selection set
    introspection_depth: int = 0
    #: how often each field of ASKED_ONCE is asked for
    asked: Counter[str] = field(default_factory=Counter)

    def include(self, other: Measure) -> None:
        """Add the selections of a fragment spread or inline fragment at this level."""
        self.aliases += other.aliases
        self.depth = max(self.depth, other.depth)
        self.introspection_fields += other.introspection_fields
        self.introspection_depth = max(self.introspection_depth, other.introspection_depth)
        self.asked.update(other.asked)


#: A fragment's measure, by its name and whether it is spread inside introspection.
Fragments = Mapping[tuple[str, bool], Measure]


def measure(selection_set: SelectionSetNode, introspection: bool, fragments: Fragments) -> Measure:
    """The measure of `selection_set`; `introspection`: it lies below `__schema` or `__type`.

    Recursion follows the document's nesting only (graphql-core parses at most 200 levels);
    fragments come measured in `fragments`, and an unknown or cyclic one counts as empty (other
    rules refuse the document)."""
    total = Measure()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            inside = introspection or name in INTROSPECTION_ROOTS
            total.aliases += selection.alias is not None
            if inside:
                total.introspection_fields += 1
                if name in ASKED_ONCE:
                    total.asked[ASKED_ONCE[name]] += 1
            if selection.selection_set is None:
                total.introspection_depth = max(total.introspection_depth, int(inside))
                continue
            child = measure(selection.selection_set, inside, fragments)
            total.aliases += child.aliases
            total.introspection_fields += child.introspection_fields
            total.asked.update(child.asked)
            if inside:
                total.introspection_depth = max(total.introspection_depth, 1 + child.introspection_depth)
            else:
                total.depth = max(total.depth, 1 + child.depth)
                total.introspection_depth = max(total.introspection_depth, child.introspection_depth)
        elif isinstance(selection, InlineFragmentNode):
            total.include(measure(selection.selection_set, introspection, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            spread = fragments.get((selection.name.value, introspection))
            if spread is not None:
                total.include(spread)
    return total


def measure_fragments(document: DocumentNode) -> dict[tuple[str, bool], Measure] | None:
    """Every fragment measured once, both inside and outside introspection; None when they spread in a cycle."""
    definitions = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    spreads = {
        name: _spread_names(definition.selection_set) & definitions.keys() for name, definition in definitions.items()
    }
    try:
        order = list(TopologicalSorter(spreads).static_order())  # a fragment after those it spreads
    except CycleError:
        return None
    measured: dict[tuple[str, bool], Measure] = {}
    for name in order:
        for introspection in (False, True):
            measured[name, introspection] = measure(definitions[name].selection_set, introspection, measured)
    return measured


def _spread_names(selection_set: SelectionSetNode) -> set[str]:
    names: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return names


def limits_rule(max_aliases: int, max_depth: int) -> type[ASTValidationRule]:
    """The rule for these limits: build it once per schema, so the validation cache keeps its hits."""

    class QueryLimits(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            for error in limit_errors(context.document, max_aliases, max_depth):
                context.report_error(error)

    return QueryLimits


def limit_errors(document: DocumentNode, max_aliases: int, max_depth: int) -> list[GraphQLError]:
    fragments = measure_fragments(document)
    if fragments is None:  # NoFragmentCyclesRule refuses the document
        return []
    errors: list[GraphQLError] = []
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    measures = [(operation, measure(operation.selection_set, False, fragments)) for operation in operations]
    aliases = sum(each.aliases for _, each in measures)
    if aliases > max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}"))
    for operation, each in measures:
        name = operation.name.value if operation.name else "anonymous"
        if each.depth > max_depth:
            errors.append(GraphQLError(f"'{name}' exceeds maximum operation depth of {max_depth}", operation))
        repeated = sorted(asked for asked, count in each.asked.items() if count > 1)
        if repeated:
            errors.append(
                GraphQLError(
                    f"'{name}' repeats {', '.join(repeated)}: an introspection query may ask for each once", operation
                )
            )
        if each.introspection_depth > INTROSPECTION_MAX_DEPTH:
            errors.append(
                GraphQLError(f"'{name}' exceeds maximum introspection depth of {INTROSPECTION_MAX_DEPTH}", operation)
            )
        if each.introspection_fields > INTROSPECTION_MAX_FIELDS:
            errors.append(
                GraphQLError(
                    f"{each.introspection_fields} introspection fields found in '{name}'."
                    f" Allowed: {INTROSPECTION_MAX_FIELDS}",
                    operation,
                )
            )
    return errors
