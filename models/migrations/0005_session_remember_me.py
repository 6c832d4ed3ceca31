from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_normalise_identifiers')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Session',
            name='remember_me',
            field=fields.BooleanField(default=True, description='false for a login without rememberMe, whose cookie ends with the browser session', db_default=True),
        ),
    ]
