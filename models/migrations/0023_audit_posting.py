from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

from models.migrations import StateOnly

# The log's index by subject as posting lists: `audit_posting` holds one row per (subject,
# block of 1,024 row ids, batch of rows joining the tree) listing the ids of the rows that
# name the subject, where `audit_subject` held one row per (row, subject). A staff page of
# 100 customers is 100 links; joining 50 such pages to the tree wrote 5,000 rows into two
# b-trees and held SQLite's one write lock for about 17 ms (every server's log append
# waiting meanwhile), against about 2 ms for the 100 lists of the same links.
# - `block` is the rows' id >> 10: a list never spans two blocks, so the lists holding a
#   range of rows are found by the range's blocks (`verify`, the log walk), and an id
#   listed outside its own block is no link at all (the view below leaves it out).
# - The key leads with the block (on SQLite the table is WITHOUT ROWID: the key is the
#   table): a batch's lists go in at the key's end, and a walk reads a range's lists in key
#   order. A subject's lists are found by the index (subject_id, first_id).
# - `audit_subject` becomes a view of the lists, one row per (row, subject) as before, for
#   the readers (the subject's rows, the walk's check that a row's links are its subjects).
# - Append-only on PostgreSQL as the table it replaces (the function comes from 0002).
# - Analyzed once built on PostgreSQL: without statistics its planner takes a subject's
#   lists for 0.5% of the table, and a query by subject and period reusing its generic
#   plan then scanned the log by time (100 ms on 200,000 rows, against 1 ms).
# - Links of rows already in the tree move into lists; links of rows not yet in it (written
#   when a row was appended, before links moved to the tree) are left to the follower,
#   which links a row when it joins the tree.

_POSTGRES = """
CREATE TABLE audit_posting (
    subject_id VARCHAR(64) NOT NULL,
    first_id BIGINT NOT NULL,
    block BIGINT NOT NULL,
    first_at TIMESTAMPTZ NOT NULL,
    last_at TIMESTAMPTZ NOT NULL,
    event_ids TEXT NOT NULL,
    PRIMARY KEY (block, subject_id, first_id)
);
CREATE UNIQUE INDEX audit_posting_subject ON audit_posting (subject_id, first_id);
COMMENT ON TABLE audit_posting IS
    'Per subject, the ids of the log rows naming it: how the log is searched by whose data it is.';
INSERT INTO audit_posting (subject_id, first_id, block, first_at, last_at, event_ids)
    SELECT s.subject_id, min(s.event_id), s.event_id >> 10, min(s.at), max(s.at),
           string_agg(s.event_id::text, ',' ORDER BY s.event_id)
    FROM audit_subject s JOIN audit_leaf l ON l.event_id = s.event_id
    GROUP BY s.subject_id, s.event_id >> 10;
DROP TABLE audit_subject;
CREATE VIEW audit_subject AS
    SELECT x.event_id, p.subject_id, p.block, p.first_at, p.last_at
    FROM audit_posting p
    CROSS JOIN LATERAL unnest(string_to_array(p.event_ids, ',')::bigint[]) AS x(event_id)
    WHERE x.event_id >> 10 = p.block;
CREATE TRIGGER audit_posting_append_only BEFORE UPDATE OR DELETE ON audit_posting
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
ANALYZE audit_posting;
"""

_SQLITE = """
CREATE TABLE audit_posting (
    subject_id VARCHAR(64) NOT NULL,
    first_id BIGINT NOT NULL,
    block BIGINT NOT NULL,
    first_at TIMESTAMP NOT NULL,
    last_at TIMESTAMP NOT NULL,
    event_ids TEXT NOT NULL,
    PRIMARY KEY (block, subject_id, first_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX audit_posting_subject ON audit_posting (subject_id, first_id);
INSERT INTO audit_posting (subject_id, first_id, block, first_at, last_at, event_ids)
    SELECT subject_id, min(event_id), event_id >> 10, min(at), max(at),
           group_concat(event_id, ',')
    FROM (SELECT s.subject_id, s.event_id, s.at FROM audit_subject s
          JOIN audit_leaf l ON l.event_id = s.event_id ORDER BY s.subject_id, s.event_id)
    GROUP BY subject_id, event_id >> 10;
DROP TABLE audit_subject;
CREATE VIEW audit_subject AS
    SELECT CAST(j.value AS INTEGER) AS event_id, p.subject_id, p.block, p.first_at, p.last_at
    FROM audit_posting p, json_each('[' || p.event_ids || ']') j
    WHERE CAST(j.value AS INTEGER) >> 10 = p.block;
"""


async def postings(apps, schema_editor):
    postgres = schema_editor.client.capabilities.dialect == "postgres"
    await schema_editor.client.execute_script(_POSTGRES if postgres else _SQLITE)


class Migration(migrations.Migration):
    dependencies = [('models', '0022_customer_fact')]

    initial = False

    operations = [
        ops.RunPython(postings),
        StateOnly(ops.DeleteModel(name='AuditSubject')),
        StateOnly(
            ops.CreateModel(
                name='AuditPosting',
                fields=[
                    ('subject_id', fields.CharField(max_length=64)),
                    ('first_id', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                    ('block', fields.BigIntField(db_index=True)),
                    ('first_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                    ('last_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                    ('event_ids', fields.TextField()),
                ],
                options={'table': 'audit_posting', 'app': 'models', 'pk_attr': 'first_id', 'table_description': 'Per subject, the ids of the log rows naming it: the log searched by whose data.'},
                bases=['Model'],
            )
        ),
        StateOnly(
            ops.CreateModel(
                name='AuditSubject',
                fields=[
                    ('event_id', fields.BigIntField(generated=False, primary_key=True, unique=True, db_index=True)),
                    ('subject_id', fields.CharField(max_length=64)),
                    ('block', fields.BigIntField()),
                    ('first_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                    ('last_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ],
                options={'table': 'audit_subject', 'app': 'models', 'pk_attr': 'event_id', 'table_description': 'A view of audit_posting: one row per (log row, subject), read only.'},
                bases=['Model'],
            )
        ),
    ]
