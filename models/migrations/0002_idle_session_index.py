from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Session',
            name=None,
            fields=['type', 'last_active_at'],
        ),
        ops.AddIndex(
            model_name='Session',
            index=Index(fields=['type', 'last_active_at', 'active_order_id']),
        ),
    ]
