from __future__ import annotations

from tortoise import fields, models


class CacheOutage(models.Model):
    """An instance that cannot reach the shared session cache, posted where every instance can read it."""

    #: the random id the instance took at start
    instance = fields.CharField(max_length=64, primary_key=True)
    since = fields.DatetimeField()
    #: refreshed while the outage lasts, so a row left behind by an instance that died grows stale
    seen_at = fields.DatetimeField()

    class Meta:
        table = "cache_outages"
