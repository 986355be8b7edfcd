from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0018_rights_clock')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RecipientNotice',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('customer_id', fields.UUIDField(db_index=True)),
                ('request_id', fields.UUIDField(null=True, db_index=True)),
                ('trigger', fields.CharField(max_length=24)),
                ('purpose', fields.CharField(default='', max_length=32)),
                ('processor_id', fields.UUIDField(null=True)),
                ('recipient', fields.CharField(max_length=200)),
                ('categories', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('channel', fields.CharField(max_length=8)),
                ('status', fields.CharField(db_index=True, max_length=16)),
                ('reason', fields.TextField(default='', unique=False)),
                ('outcome', fields.CharField(default='', max_length=16)),
                ('decided_by', fields.UUIDField(null=True)),
                ('hidden_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outbox_id', fields.BigIntField(null=True, db_index=True)),
                ('sends', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('notified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('escalated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'recipient_notice', 'app': 'models', 'unique_together': (('request_id', 'recipient'),), 'pk_attr': 'id', 'table_description': "One recipient told of one change to a customer's data it received (GDPR Article 19):"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='channel',
            field=fields.CharField(default='mail', max_length=8),
        ),
        ops.AddField(
            model_name='OutboxMessage',
            name='processor_id',
            field=fields.UUIDField(null=True),
        ),
        ops.AddField(
            model_name='Processor',
            name='notice_secret',
            field=fields.CharField(default='', max_length=64),
        ),
        ops.AddField(
            model_name='Processor',
            name='notice_url',
            field=fields.CharField(default='', max_length=500),
        ),
    ]
