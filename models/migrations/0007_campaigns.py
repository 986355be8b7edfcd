from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_rights_requests')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('subject', fields.CharField(max_length=200)),
                ('body_text', fields.TextField(unique=False)),
                ('body_html', fields.TextField(default='', unique=False)),
                ('status', fields.CharField(default='draft', db_index=True, max_length=16)),
                ('created_by', fields.UUIDField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_by', fields.UUIDField(null=True)),
                ('send_started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('queued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cursor', fields.UUIDField(null=True)),
                ('recipients', fields.IntField(default=0)),
                ('skipped', fields.IntField(default=0)),
            ],
            options={'table': 'campaign', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A marketing email (policy sections 2 and 5.2). Sending queues one message per'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='body_html',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='campaign_id',
            field=fields.UUIDField(null=True, db_index=True),
        ),
    ]
