"""The superadmin gets a stable mark: the bootstrap finds it by that mark, never by its identifier.

On a database the service has already started on, the user the first start created is marked: the
first user of all (the bootstrap makes it before the API can serve), provided it still holds the
SuperAdmin role. If it was deleted or stripped of the role, nobody is marked and the bootstrap says so.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

MARK_THE_FIRST_SUPERADMIN = """
UPDATE users SET is_superadmin = TRUE
WHERE id = (SELECT MIN(id) FROM users)
  AND id IN (
    SELECT user_roles.users_id FROM user_roles JOIN roles ON roles.id = user_roles.role_id
    WHERE roles.code = '__super_admin_role__'
  )
"""

class Migration(migrations.Migration):
    dependencies = [('models', '0002_idle_session_index')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='is_superadmin',
            field=fields.BooleanField(null=True, unique=True, description='True on the superadmin the bootstrap keeps, NULL on every other user, unique so at most one holds it'),
        ),
        ops.RunSQL(MARK_THE_FIRST_SUPERADMIN, reverse_sql=ops.RunSQL.noop),
    ]
