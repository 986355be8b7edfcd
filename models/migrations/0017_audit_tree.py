from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# The decision log's Merkle tree (authz/log_tree.py) and signed checkpoints: as
# append-only as the log itself on PostgreSQL (the function comes from 0002). Keys are
# retired (`retired_at` set once), so that table keeps UPDATE.
_TABLES = ("audit_leaf", "audit_node", "audit_checkpoint")


async def append_only_tree(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "".join(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();"
                for t in _TABLES
            )
        )


async def drop_append_only(apps, schema_editor):
    if schema_editor.client.capabilities.dialect == "postgres":
        await schema_editor.client.execute_script(
            "".join(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in _TABLES)
        )

class Migration(migrations.Migration):
    dependencies = [('models', '0016_password_reset')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('size', fields.BigIntField()),
                ('root', fields.CharField(max_length=64)),
                ('signed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('key_id', fields.CharField(max_length=8)),
                ('note', fields.TextField(unique=False)),
            ],
            options={'table': 'audit_checkpoint', 'app': 'models', 'indexes': [Index(fields=['size'])], 'pk_attr': 'id', 'table_description': 'A checkpoint the log signed: a C2SP signed note over (origin, size, root), kept so'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditLeaf',
            fields=[
                ('idx', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('event_id', fields.BigIntField(unique=True)),
                ('salt', fields.CharField(max_length=32)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_leaf', 'app': 'models', 'pk_attr': 'idx', 'table_description': 'One row of the decision log as a leaf of its Merkle tree (docs/AUDIT_LOG.md).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditLogKey',
            fields=[
                ('key_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=8)),
                ('name', fields.CharField(max_length=200)),
                ('vkey', fields.CharField(max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('retired_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_log_key', 'app': 'models', 'pk_attr': 'key_id', 'table_description': "A public key that signs the log's checkpoints, with the period it signed in"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditNode',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_node', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An interior node of the tree over a perfect subtree: 2^level leaves starting at'},
            bases=['Model'],
        ),
        ops.RunPython(append_only_tree, drop_append_only),
    ]
