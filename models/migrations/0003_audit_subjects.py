from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# One audit row may name a page of subjects; `audit_subject` indexes them, and is as
# append-only as the log itself on PostgreSQL (the function comes from 0002).
_APPEND_ONLY = """
CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE ON audit_subject
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""


async def append_only_subjects(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(_APPEND_ONLY)


async def drop_append_only(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "DROP TRIGGER IF EXISTS audit_subject_append_only ON audit_subject;"
        )

class Migration(migrations.Migration):
    dependencies = [('models', '0002_authz_audit_support')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditSubject',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.BigIntField()),
                ('subject_id', fields.CharField(max_length=64)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_subject', 'app': 'models', 'indexes': [Index(fields=['subject_id', 'at']), Index(fields=['event_id'])], 'pk_attr': 'id', 'table_description': 'One row per (audit row, subject): how the log is searched by whose data it is.'},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='AuditEvent',
            name=None,
            fields=['subject_id', 'at'],
        ),
        ops.AlterField(
            model_name='AuditEvent',
            name='subject_id',
            field=fields.TextField(default='', unique=False),
        ),
        ops.RunPython(append_only_subjects, drop_append_only),
    ]
