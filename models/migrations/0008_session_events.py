from tortoise import migrations
from tortoise.migrations import operations as ops
from models.enums import SessionEventType
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_session_origins')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SessionEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('type', fields.CharEnumField(description='LOGIN: LOGIN\nLOGIN_FAILED: LOGIN_FAILED\nLOGOUT: LOGOUT\nREVOKED: REVOKED\nEXPIRED: EXPIRED\nORDER_MERGED: ORDER_MERGED\nIMPERSONATION_STARTED: IMPERSONATION_STARTED\nREAUTHENTICATED: REAUTHENTICATED\nPASSWORD_CHANGED: PASSWORD_CHANGED', enum_type=SessionEventType, max_length=32)),
                ('session_id', fields.IntField(null=True, description='the session it happened to - not a foreign key, the event outlives the session')),
                ('user_id', fields.IntField(null=True, description='the user the session belongs (or was to belong) to - not a foreign key, the event outlives the user')),
                ('actor_id', fields.IntField(null=True, description='the user who caused it when that is someone else (an administrator)')),
                ('ip_address', fields.CharField(null=True, description='the client address, as SESSION_CLIENT_ADDRESS keeps it', max_length=45)),
                ('reason', fields.CharField(null=True, description='a stable lower-case code saying why, such as revoked-by-admin or rate-limited', max_length=32)),
            ],
            options={'table': 'session_events', 'app': 'models', 'indexes': [Index(fields=['at']), Index(fields=['user_id', 'at']), Index(fields=['type', 'at'])], 'pk_attr': 'id', 'table_description': 'What happened to a session, kept for SESSION_EVENT_RETENTION. Never a token or a password.'},
            bases=['Model'],
        ),
    ]
