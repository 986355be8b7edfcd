from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

# The audit log is append-only for the application: on PostgreSQL a trigger refuses every
# UPDATE and DELETE (TRUNCATE, an owner's operation, is not an application path).
_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""


async def append_only_audit_log(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(_APPEND_ONLY)


async def drop_append_only(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;"
            "DROP FUNCTION IF EXISTS audit_event_append_only();"
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('request_id', fields.CharField(default='', max_length=32)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(default='', max_length=64)),
                ('roles', fields.CharField(default='', max_length=200)),
                ('event', fields.CharField(max_length=16)),
                ('operation', fields.CharField(default='', max_length=64)),
                ('category', fields.CharField(default='', max_length=32)),
                ('action', fields.CharField(default='', max_length=16)),
                ('subject_id', fields.CharField(default='', max_length=64)),
                ('purpose', fields.CharField(default='', max_length=32)),
                ('decision', fields.CharField(max_length=8)),
                ('rule', fields.CharField(default='', max_length=300)),
                ('reason', fields.CharField(default='', max_length=200)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'audit_event', 'app': 'models', 'indexes': [Index(fields=['subject_id', 'at']), Index(fields=['actor_id', 'at']), Index(fields=['at'])], 'pk_attr': 'id', 'table_description': 'Append-only, hash-chained log of access decisions and security events.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PolicyRule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('ptype', fields.CharField(max_length=8)),
                ('v0', fields.CharField(default='', max_length=100)),
                ('v1', fields.CharField(default='', max_length=100)),
                ('v2', fields.CharField(default='', max_length=100)),
                ('v3', fields.CharField(default='', max_length=100)),
                ('v4', fields.CharField(default='', max_length=100)),
                ('v5', fields.CharField(default='', max_length=100)),
            ],
            options={'table': 'policy_rule', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A Casbin policy rule (`p`, or a `g` between roles). Employee role grants are not'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PolicyVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.BigIntField(default=0)),
            ],
            options={'table': 'policy_version', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row whose counter moves with every change of rules or role grants, so that'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SupportCase',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='support_cases', on_delete=OnDelete.CASCADE)),
                ('subject', fields.CharField(max_length=200)),
                ('message', fields.TextField(unique=False)),
                ('status', fields.CharField(default='open', db_index=True, max_length=16)),
                ('assignee', fields.ForeignKeyField('models.Employee', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='support_cases', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'support_case', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'status'])], 'pk_attr': 'id', 'table_description': "A customer's question or complaint (policy section 8). While a case is open,"},
            bases=['Model'],
        ),
        ops.RunPython(append_only_audit_log, drop_append_only),
    ]
