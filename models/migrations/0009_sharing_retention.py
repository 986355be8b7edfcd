from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

# The disclosure ledger is append-only like the audit log. On PostgreSQL a trigger refuses
# every DELETE and every UPDATE but one: blanking `note` (legal's free text, which erasure
# removes; the hash chain does not cover it) with every other column unchanged.
_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION disclosure_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.note = '' AND (to_jsonb(NEW) - 'note') = (to_jsonb(OLD) - 'note') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'disclosure is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER disclosure_append_only BEFORE UPDATE OR DELETE ON disclosure
    FOR EACH ROW EXECUTE FUNCTION disclosure_append_only();
"""


async def append_only_ledger(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(_APPEND_ONLY)


async def drop_append_only(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "DROP TRIGGER IF EXISTS disclosure_append_only ON disclosure;"
            "DROP FUNCTION IF EXISTS disclosure_append_only();"
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0008_outbox_claims')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Disclosure',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('customer_id', fields.UUIDField()),
                ('recipient', fields.CharField(max_length=200)),
                ('processor_id', fields.UUIDField(null=True)),
                ('categories', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('purpose', fields.CharField(default='', max_length=32)),
                ('legal_basis', fields.CharField(max_length=32)),
                ('reference', fields.CharField(default='', max_length=200)),
                ('nondisclosure_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('recorded_by', fields.UUIDField()),
                ('note', fields.TextField(default='', unique=False)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'disclosure', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'at']), Index(fields=['at'])], 'pk_attr': 'id', 'table_description': "One disclosure of one customer's data to one recipient (policy section 3): a share"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Processor',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=200)),
                ('contact', fields.CharField(max_length=320)),
                ('country', fields.CharField(max_length=2)),
                ('contract_reference', fields.CharField(max_length=200)),
                ('purposes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('categories', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('active_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('active_to', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.UUIDField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_by', fields.UUIDField()),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'processor', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A service provider we share personal data with (policy section 3A), only for its'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RetentionRule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('category', fields.CharField(max_length=32)),
                ('anchor', fields.CharField(max_length=32)),
                ('period', fields.CharField(max_length=32)),
                ('months', fields.IntField()),
                ('days', fields.IntField()),
                ('updated_by', fields.UUIDField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'retention_rule', 'app': 'models', 'unique_together': (('category', 'anchor'),), 'pk_attr': 'id', 'table_description': 'How long one data category is kept after an anchor event (policy section 6), e.g.'},
            bases=['Model'],
        ),
        ops.RunPython(append_only_ledger, drop_append_only),
    ]
