"""Property: any document over the whole schema, with generated variables, sent by nobody, a guest,
a user or the superadmin, gets the same bytes, status and headers from its compiled plan as from
Strawberry's execution (see tests/schema/twin.py for how the two replays are kept in step).

Documents come from hypothesis-graphql (queries and mutations over every root field); each literal
argument is kept, moved into a variable given in the request, or moved into a variable whose
default is that literal. Each request is a POST or a GET, with an Accept header the lean HTTP path
takes (none, `*/*`, `application/json`) or one it leaves to Strawberry's view: the answers compared
are whole HTTP responses, so the lean path (schema/compiled/lean.py) is held to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NameNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    parse_type,
    print_ast,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries

from schema.schema import build_schema
from tests.schema.twin import ACCEPTS, CALLERS, Step, TwinReplays, lean_expected
from tests.schema.twin import twins as twins

GRAPHQL_SCHEMA: GraphQLSchema = build_schema()._schema
DOCUMENTS = st.one_of(
    queries(GRAPHQL_SCHEMA, print_ast=lambda document: document),
    mutations(GRAPHQL_SCHEMA, print_ast=lambda document: document),
)
EXAMPLES = 30


def json_value(node: ValueNode) -> Any:
    """A literal as the JSON a client would send for it in `variables`."""
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, FloatValueNode):
        return float(node.value)
    if isinstance(node, StringValueNode | EnumValueNode):
        return node.value
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return [json_value(value) for value in node.values]
    if isinstance(node, ObjectValueNode):
        return {field.name.value: json_value(field.value) for field in node.fields}
    return None


@st.composite
def steps(draw: Callable[..., Any]) -> Step:
    document: DocumentNode = draw(DOCUMENTS)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    definitions: list[VariableDefinitionNode] = []
    variables: dict[str, Any] = {}

    def lift(argument: ArgumentNode, type_: Any) -> ArgumentNode:
        how = draw(st.sampled_from(("literal", "variable", "default")))
        if how == "literal":
            return argument
        name = f"v{len(definitions)}"
        default = argument.value if how == "default" else None
        definitions.append(
            VariableDefinitionNode(
                variable=VariableNode(name=NameNode(value=name)),
                type=parse_type(str(type_)),
                default_value=default,  # type: ignore[arg-type]
                directives=(),
            )
        )
        if how == "variable":
            variables[name] = json_value(argument.value)
        return ArgumentNode(name=argument.name, value=VariableNode(name=NameNode(value=name)))

    def walk(selection_set: SelectionSetNode, parent: Any) -> SelectionSetNode:
        selections: list[Any] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                field = GRAPHQL_SCHEMA.get_field(parent, selection.name.value)
                assert field is not None
                arguments = tuple(
                    lift(argument, field.args[argument.name.value].type) for argument in selection.arguments or ()
                )
                sub = selection.selection_set
                if sub is not None:
                    sub = walk(sub, get_named_type(field.type))
                selection = replace(selection, arguments=arguments, selection_set=sub)
            elif isinstance(selection, InlineFragmentNode) and selection.type_condition is not None:
                condition = GRAPHQL_SCHEMA.get_type(selection.type_condition.name.value)
                selection = replace(selection, selection_set=walk(selection.selection_set, condition))
            selections.append(selection)
        return SelectionSetNode(selections=tuple(selections))

    root = GRAPHQL_SCHEMA.get_root_type(operation.operation)
    selection_set = walk(operation.selection_set, root)
    lifted = replace(operation, selection_set=selection_set, variable_definitions=tuple(definitions))
    query = print_ast(DocumentNode(definitions=(lifted,)))
    method = draw(st.sampled_from(("POST", "GET")))
    accept = draw(st.sampled_from(ACCEPTS))
    return Step(draw(st.sampled_from(CALLERS)), query, variables if definitions else None, None, method, accept)


def has_plan(step: Step) -> bool:
    """Every generated document validates, so each has a plan, except a mutation sent by GET."""
    return step.method == "POST" or not step.query.startswith("mutation")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(script=st.lists(steps(), min_size=1, max_size=5))
async def test_generated_documents_answer_alike_on_both_paths(twins: TwinReplays, script: list[Step]) -> None:
    strawberry = await twins.strawberry(script)
    compiled = await twins.compiled(script)

    assert compiled.answers == strawberry.answers
    assert compiled.compiled_steps == sum(has_plan(step) for step in script)
    assert compiled.lean_steps == sum(lean_expected(step, has_plan(step)) for step in script)
