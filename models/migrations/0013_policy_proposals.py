from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_decision_inputs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PolicyChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.BigIntField(unique=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('kind', fields.CharField(max_length=16)),
                ('text', fields.CharField(max_length=300)),
                ('proposed_by', fields.UUIDField(null=True)),
                ('approved_by', fields.UUIDField(null=True)),
                ('proposal_id', fields.UUIDField(null=True)),
            ],
            options={'table': 'policy_change', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The history of the access policy: one row per version moved by a rule or role'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PolicyProposal',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=16)),
                ('change', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('text', fields.CharField(max_length=300)),
                ('pending_key', fields.CharField(null=True, unique=True, max_length=300)),
                ('status', fields.CharField(default='pending', db_index=True, max_length=16)),
                ('proposed_by', fields.UUIDField()),
                ('proposed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.UUIDField(null=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decision_note', fields.CharField(default='', max_length=500)),
                ('applied_version', fields.BigIntField(null=True)),
            ],
            options={'table': 'policy_proposal', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A change that widens access to personal data, waiting for a second person (four'},
            bases=['Model'],
        ),
    ]
