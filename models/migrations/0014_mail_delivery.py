from tortoise import migrations
from tortoise.migrations import operations as ops
from models.outbox import new_message_id
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0013_policy_proposals')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboxMessage',
            name='message_id',
            field=fields.CharField(null=True, default=new_message_id, max_length=255),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='first_attempt_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
