from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

from models.migrations import StateOnly

# `audit_subject` keyed by (event_id, subject_id) instead of a generated id: each link was
# three index entries and a sequence value (the id's key, `event_id`, `(subject_id, at)`),
# now two. Tortoise cannot declare a key of two columns, so the table is rebuilt here in
# SQL, and Tortoise's own record of the model (`event_id` as its key) is changed by the
# operations wrapped in `StateOnly`, which touch no table. On SQLite the table is
# WITHOUT ROWID: the key is the table, one b-tree fewer again. A row listing the same
# subject twice is linked once (links are compared as sets).

_INDEX = "idx_audit_subje_subject_0fe7bc"

_POSTGRES = f"""
CREATE TABLE audit_subject_keyed (
    event_id BIGINT NOT NULL,
    subject_id VARCHAR(64) NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, subject_id)
);
INSERT INTO audit_subject_keyed (event_id, subject_id, at)
    SELECT event_id, subject_id, min(at) FROM audit_subject
    GROUP BY event_id, subject_id ORDER BY event_id, subject_id;
DROP TABLE audit_subject;
ALTER TABLE audit_subject_keyed RENAME TO audit_subject;
ALTER TABLE audit_subject RENAME CONSTRAINT audit_subject_keyed_pkey TO audit_subject_pkey;
CREATE INDEX {_INDEX} ON audit_subject (subject_id, at);
COMMENT ON TABLE audit_subject IS
    'One row per (audit row, subject): how the log is searched by whose data it is.';
CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE ON audit_subject
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""

_SQLITE = f"""
CREATE TABLE audit_subject_keyed (
    event_id BIGINT NOT NULL,
    subject_id VARCHAR(64) NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, subject_id)
) WITHOUT ROWID;
INSERT INTO audit_subject_keyed (event_id, subject_id, at)
    SELECT event_id, subject_id, min(at) FROM audit_subject
    GROUP BY event_id, subject_id ORDER BY event_id, subject_id;
DROP TABLE audit_subject;
ALTER TABLE audit_subject_keyed RENAME TO audit_subject;
CREATE INDEX {_INDEX} ON audit_subject (subject_id, at);
"""


async def rebuild_keyed(apps, schema_editor):
    postgres = schema_editor.client.capabilities.dialect == "postgres"
    await schema_editor.client.execute_script(_POSTGRES if postgres else _SQLITE)


class Migration(migrations.Migration):
    dependencies = [('models', '0019_recipient_notices')]

    initial = False

    operations = [
        ops.RunPython(rebuild_keyed),
        StateOnly(ops.DeleteModel(name='AuditSubject')),
        StateOnly(
            ops.CreateModel(
                name='AuditSubject',
                fields=[
                    ('event_id', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                    ('subject_id', fields.CharField(max_length=64)),
                    ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ],
                options={'table': 'audit_subject', 'app': 'models', 'indexes': [Index(fields=['subject_id', 'at'])], 'pk_attr': 'event_id', 'table_description': 'One row per (audit row, subject): how the log is searched by whose data it is.'},
                bases=['Model'],
            )
        ),
    ]
