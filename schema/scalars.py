"""The scalars Strawberry provides, described in our words (GraphQL's own ID, String, Int, Float and
Boolean keep the specification's descriptions)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

#: Passed as StrawberryConfig(scalar_map=...): the same parsing and serializing, another description.
SCALARS: Mapping[object, ScalarDefinition] = {
    datetime: dataclasses.replace(
        DateTimeDefinition,
        description=(
            "A moment in time as an ISO 8601 string with its UTC offset, "
            'for example "2026-03-01T12:30:00.250000+00:00".'
        ),
    ),
}
