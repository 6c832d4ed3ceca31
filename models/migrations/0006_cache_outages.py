from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_session_remember_me')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CacheOutage',
            fields=[
                ('instance', fields.CharField(primary_key=True, unique=True, db_index=True, description='the random id the instance took at start', max_length=64)),
                ('since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seen_at', fields.DatetimeField(description='refreshed while the outage lasts, so a row left behind by an instance that died grows stale', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'cache_outages', 'app': 'models', 'pk_attr': 'instance', 'table_description': 'An instance that cannot reach the shared session cache, posted where every instance can read it.'},
            bases=['Model'],
        ),
    ]
