from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_deferred')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AuditEvent',
            name='conditions',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='AuditEvent',
            name='policy_version',
            field=fields.BigIntField(default=0),
        ),
    ]
