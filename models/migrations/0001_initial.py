import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.enums import SessionType


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Channel',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('token', fields.CharField(unique=True, max_length=128)),
                ('is_default', fields.BooleanField(default=False)),
            ],
            options={'table': 'channels', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A store front, named by code and addressed by clients through its token.'},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='Role',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('description', fields.CharField(default='', max_length=255)),
                ('permissions', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('channels', fields.ManyToManyField('models.Channel', unique=True, db_constraint=True, through='role_channels', forward_key='channel_id', backward_key='roles_id', related_name='roles', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'roles', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A set of permissions granted on some channels, whose permissions hold Permission values.'},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('identifier', fields.CharField(unique=True, max_length=255)),
                ('password_hash', fields.CharField(null=True, max_length=255)),
                ('verified', fields.BooleanField(default=True)),
                ('last_login', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('roles', fields.ManyToManyField('models.Role', unique=True, db_constraint=True, through='user_roles', forward_key='role_id', backward_key='users_id', related_name='users', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Someone who can log in, its password is stored only as an Argon2 hash.'},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='Order',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('active', fields.BooleanField(default=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.CASCADE)),
                ('created_by_session_id', fields.IntField(null=True, description='the session that created a guest order (not a foreign key, sessions come and go)')),
            ],
            options={'table': 'orders', 'app': 'models', 'indexes': [Index(fields=['user_id', 'active'])], 'pk_attr': 'id', 'table_description': 'Just enough of an order to be a cart. A guest order has no user.'},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='OrderLine',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.CASCADE)),
                ('product_variant_id', fields.CharField(max_length=64)),
                ('quantity', fields.IntField()),
            ],
            options={'table': 'order_lines', 'app': 'models', 'unique_together': (('order_id', 'product_variant_id'),), 'pk_attr': 'id'},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('type', fields.CharEnumField(description='ANONYMOUS: anonymous\nAUTHENTICATED: authenticated', enum_type=SessionType, max_length=16)),
                ('expires', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_active_at', fields.DatetimeField(description='refreshed at most about once a day, so idle anonymous sessions can be found', auto_now=False, auto_now_add=False)),
                ('invalidated', fields.BooleanField(default=False)),
                ('authentication_strategy', fields.CharField(null=True, max_length=64)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('active_order', fields.ForeignKeyField('models.Order', source_field='active_order_id', null=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.SET_NULL)),
                ('active_channel', fields.ForeignKeyField('models.Channel', source_field='active_channel_id', null=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'sessions', 'app': 'models', 'indexes': [Index(fields=['expires']), Index(fields=['type', 'last_active_at']), Index(fields=['user_id']), Index(fields=['active_order_id'])], 'pk_attr': 'id', 'table_description': 'Anonymous or authenticated session. Only the SHA-256 digest of its token is stored.'},
            bases=['TimestampedModel'],
        ),
    ]
