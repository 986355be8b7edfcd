from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_visits_policy_versions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LegalHold',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='legal_holds', on_delete=OnDelete.CASCADE)),
                ('categories', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reason', fields.TextField(unique=False)),
                ('reference', fields.CharField(max_length=200)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('placed_by', fields.UUIDField()),
                ('placed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('released_by', fields.UUIDField(null=True)),
                ('released_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'legal_hold', 'app': 'models', 'pk_attr': 'id', 'table_description': "A legal obligation to keep some of a customer's data: erasure and retention purges"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RightsRequest',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='rights_requests', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('status', fields.CharField(db_index=True, max_length=16)),
                ('channel', fields.CharField(max_length=16)),
                ('details', fields.TextField(default='', unique=False)),
                ('changes', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('before', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('after', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('outcome', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('code_digest', fields.CharField(null=True, max_length=64)),
                ('code_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('code_attempts', fields.IntField(default=0)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('extended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('extension_reason', fields.TextField(default='', unique=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.UUIDField(null=True)),
                ('decision_reason', fields.TextField(default='', unique=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rights_request', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'submitted_at'])], 'pk_attr': 'id', 'table_description': 'A data-subject request (policy section 5.1): access, rectification or erasure.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DataExport',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request', fields.ForeignKeyField('models.RightsRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='exports', on_delete=OnDelete.CASCADE)),
                ('customer_id', fields.UUIDField(db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('document', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'data_export', 'app': 'models', 'pk_attr': 'id', 'table_description': "An access request's answer, downloadable once through an expiring link."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RightsTransition',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('request', fields.ForeignKeyField('models.RightsRequest', source_field='request_id', db_constraint=True, to_field='id', related_name='transitions', on_delete=OnDelete.CASCADE)),
                ('from_status', fields.CharField(max_length=16)),
                ('to_status', fields.CharField(max_length=16)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(default='', max_length=64)),
                ('reason', fields.TextField(default='', unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rights_transition', 'app': 'models', 'pk_attr': 'id', 'table_description': "Every change of a request's status: who, when, why."},
            bases=['Model'],
        ),
    ]
