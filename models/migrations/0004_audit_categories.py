from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_audit_subjects')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='AuditEvent',
            name='category',
            field=fields.TextField(default='', unique=False),
        ),
    ]
