from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from models.migrations import StateOnly

# `consent_granted`: per customer, the purposes whose current consent (`consent_current`)
# grants them, joined by commas, kept by triggers on `consent_current` (itself kept by
# triggers on the history), so that no writer can leave it behind. A staff page reads a
# customer's granted purposes as one row found by its key, where aggregating the customer's
# rows of `consent_current` cost SQLite about 1 microsecond a customer (0.07 ms of a page
# of 100's 0.23). A customer with no purpose granted has no row.
# - Any change to a row of `consent_current` (insert, the upsert's update, delete)
#   recomputes the row of the customer it touched (both, if it moved one).
# - On PostgreSQL, writers of one customer's consents take turns (an advisory lock on the
#   customer, held to the commit): each recomputes from what the one before it committed,
#   where two at once each computed without the other's purpose and the second's insert
#   broke the key. SQLite has one writer at a time.
# Tortoise is told about the table (its key is `customer_id`); the operation wrapped in
# `StateOnly` touches no table. The table starts from `consent_current`.


def _recompute(ref: str, postgres: bool) -> str:
    """The statements that rebuild the row of `ref`'s customer (`ref`: OLD or NEW)."""
    joined = "string_agg(purpose, ',' ORDER BY purpose)" if postgres else "group_concat(purpose, ',')"
    return (
        f"DELETE FROM consent_granted WHERE customer_id = {ref}.customer_id;\n"
        f"INSERT INTO consent_granted (customer_id, purposes)\n"
        f"    SELECT customer_id, {joined} FROM consent_current\n"
        f"    WHERE customer_id = {ref}.customer_id AND granted GROUP BY customer_id;\n"
    )


_LOCK_CLASS = 0x636F6E73  # any constant: the class of the per-customer advisory locks


def backfill(postgres: bool) -> str:
    """The rows of every customer with a purpose granted, from `consent_current`."""
    joined = "string_agg(purpose, ',' ORDER BY purpose)" if postgres else "group_concat(purpose, ',')"
    return (
        f"INSERT INTO consent_granted (customer_id, purposes)\n"
        f"    SELECT customer_id, {joined} FROM consent_current WHERE granted GROUP BY customer_id;\n"
    )


_POSTGRES = f"""
CREATE TABLE consent_granted (
    customer_id UUID NOT NULL PRIMARY KEY,
    purposes TEXT NOT NULL
);
COMMENT ON TABLE consent_granted IS
    'The purposes each customer currently grants, kept by triggers on consent_current.';
CREATE FUNCTION consent_granted_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_advisory_xact_lock({_LOCK_CLASS}, hashtext(OLD.customer_id::text));
        {_recompute("OLD", True)}
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_advisory_xact_lock({_LOCK_CLASS}, hashtext(NEW.customer_id::text));
        {_recompute("NEW", True)}
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER consent_granted_kept AFTER INSERT OR UPDATE OR DELETE ON consent_current
    FOR EACH ROW EXECUTE FUNCTION consent_granted_kept();
{backfill(True)}"""

_SQLITE = f"""
CREATE TABLE consent_granted (
    customer_id CHAR(36) NOT NULL PRIMARY KEY,
    purposes TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER consent_granted_insert AFTER INSERT ON consent_current BEGIN
    {_recompute("NEW", False)}
END;
CREATE TRIGGER consent_granted_update AFTER UPDATE ON consent_current BEGIN
    {_recompute("OLD", False)}
    {_recompute("NEW", False)}
END;
CREATE TRIGGER consent_granted_delete AFTER DELETE ON consent_current BEGIN
    {_recompute("OLD", False)}
END;
{backfill(False)}"""


async def create_granted(apps, schema_editor):
    postgres = schema_editor.client.capabilities.dialect == "postgres"
    await schema_editor.client.execute_script(_POSTGRES if postgres else _SQLITE)


class Migration(migrations.Migration):
    dependencies = [('models', '0021_consent_current')]

    initial = False

    operations = [
        ops.RunPython(create_granted),
        StateOnly(
            ops.CreateModel(
                name='GrantedConsent',
                fields=[
                    ('customer_id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                    ('purposes', fields.TextField()),
                ],
                options={'table': 'consent_granted', 'app': 'models', 'pk_attr': 'customer_id', 'table_description': 'The purposes each customer currently grants, kept by triggers on consent_current.'},
                bases=['Model'],
            )
        ),
    ]
