from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

#: Sessions from before this migration were last seen when they were last active.
BACKFILL_SEEN_AT = "UPDATE sessions SET seen_at = last_active_at WHERE seen_at IS NULL"


class Migration(migrations.Migration):
    dependencies = [('models', '0006_cache_outages')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Session',
            name='authenticated_at',
            field=fields.DatetimeField(null=True, description='when the user last proved a credential in this session (login) - null for guests and API-made sessions', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Session',
            name='client_address',
            field=fields.CharField(null=True, description='the client address of the creating or last refreshing request, as SESSION_CLIENT_ADDRESS keeps it', max_length=45),
        ),
        ops.AddField(
            model_name='Session',
            name='impersonator',
            field=fields.ForeignKeyField('models.User', source_field='impersonator_id', null=True, description='the administrator who created this session for its user (impersonation) - null otherwise', db_constraint=True, to_field='id', related_name='impersonated_sessions', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Session',
            name='seen_at',
            field=fields.DatetimeField(null=True, description='when a request presenting the token as its own credential was last served, to SESSION_ACTIVITY_RESOLUTION', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Session',
            name='user_agent',
            field=fields.TextField(null=True, description='the user agent of that request, cut to SESSION_USER_AGENT_MAX characters', unique=False),
        ),
        ops.RunSQL(BACKFILL_SEEN_AT, reverse_sql=ops.RunSQL.noop),
    ]
