"""User identifiers take their normal form (server/services/identifiers.py): NFKC, case-folded,
trimmed, invisible characters dropped.

Nothing is merged and no account lost: when two users would end with one identifier (`Alice` and
`alice`), or a user with an empty or over-long one, the migration fails, changes nothing, and names
every such user by id; rename them, then migrate again. Each identifier changed is logged by user id.
"""

import logging
from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

from models.identifiers import normalised_identifiers

logger = logging.getLogger(__name__)


async def normalise_identifiers(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    rows = await client.execute_query_dict("SELECT id, identifier FROM users ORDER BY id")
    changes = normalised_identifiers((row["id"], row["identifier"]) for row in rows)
    update = (
        "UPDATE users SET identifier = ? WHERE id = ?"
        if client.capabilities.dialect == "sqlite"
        else "UPDATE users SET identifier = $1 WHERE id = $2"
    )
    for user_id, identifier in changes.items():
        await client.execute_query(update, [identifier, user_id])
    if changes:
        logger.warning(
            "normalised the identifiers of %d user(s): ids %s", len(changes), ", ".join(map(str, changes))
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0003_superadmin_mark')]

    initial = False

    operations = [
        ops.RunPython(normalise_identifiers, reverse_code=ops.RunPython.noop),
    ]
