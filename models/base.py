"""Fields every table shares."""

from __future__ import annotations

from tortoise import fields, models


class TimestampedModel(models.Model):
    id = fields.IntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        abstract = True


# Model and field docstrings become SQL comments in migrations: keep semicolons and backticks out
# of them, the SQLite migration runner splits statements on the first and chokes on the second.
