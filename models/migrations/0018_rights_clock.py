from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0017_audit_tree')]

    initial = False

    operations = [
        ops.AddField(
            model_name='RightsRequest',
            name='clock',
            field=fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='RightsRequest',
            name='jurisdiction',
            field=fields.CharField(default='GDPR', max_length=16),
        ),
    ]
