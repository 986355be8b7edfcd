from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from models.migrations import StateOnly

# `customer_fact`: per customer, the facts a staff read's guards decide on, kept by triggers
# so that no writer can leave them behind: whether a support case is open, whether a
# rights request is running, and the purposes whose current consent (`consent_current`)
# grants them, joined by commas. A staff page reads them as one row found by its key (a
# LEFT JOIN), where two EXISTS searches and an aggregate over `consent_current` per
# customer cost SQLite 0.08 ms of a page of 100's 0.15 ms statement. A customer of whom no
# fact holds has no row.
# - Any change to a row of `support_case` or `rights_request` (insert, delete, a change of
#   its customer or status) or of `consent_current` (insert, the upsert's update, delete)
#   recomputes the row of the customer it touched (both, if it moved one), from those
#   tables, in the writer's transaction.
# - On PostgreSQL, writers of one customer's facts take turns (an advisory lock on the
#   customer, held to the commit): each recomputes from what the one before it committed,
#   where two at once each computed without the other's change and the second's insert
#   broke the key. SQLite has one writer at a time.
# - The statuses are those of the code when this was written (api/support/service.py OPEN,
#   api/rights/rules.py RUNNING); tests/fact_invariant.py compares the table with the code's
#   definition after every test, so a status added in code and not here fails the suite.
# Tortoise is told about the table (its key is `customer_id`). The table starts from the
# three tables.

_OPEN = "'open'"
_RUNNING = "'approved', 'extended', 'in_progress', 'notifying', 'pending'"
_LOCK_CLASS = 0x63757374  # any constant: the class of the per-customer advisory locks
_COLUMNS = "customer_id, open_case, fulfilling_request, purposes"


def _facts(who: str, postgres: bool, source: str = "") -> str:
    """A SELECT of the row of the customer `who` (an SQL expression), none if no fact holds;
    with `source` (a FROM clause naming `who`'s table), of every such customer."""
    joined = "string_agg(purpose, ',' ORDER BY purpose)" if postgres else "group_concat(purpose, ',')"
    return (
        f"SELECT customer_id, open_case, fulfilling_request, purposes FROM (SELECT {who} AS customer_id,\n"
        f"    EXISTS (SELECT 1 FROM support_case s WHERE s.customer_id = {who} AND s.status = {_OPEN}) AS open_case,\n"
        f"    EXISTS (SELECT 1 FROM rights_request r WHERE r.customer_id = {who} AND r.status IN ({_RUNNING})) AS fulfilling_request,\n"
        f"    (SELECT {joined} FROM consent_current c WHERE c.customer_id = {who} AND c.granted) AS purposes\n"
        f"    {source}) AS f WHERE open_case OR fulfilling_request OR purposes IS NOT NULL"
    )


def _recompute(who: str, postgres: bool) -> str:
    """The statements that rebuild the row of the customer `who` (OLD.customer_id, ...)."""
    lock = f"PERFORM pg_advisory_xact_lock({_LOCK_CLASS}, hashtext({who}::text));\n" if postgres else ""
    return (
        f"{lock}DELETE FROM customer_fact WHERE customer_id = {who};\n"
        f"INSERT INTO customer_fact ({_COLUMNS})\n{_facts(who, postgres)};\n"
    )


def backfill(postgres: bool) -> str:
    """The rows of every customer of whom a fact holds."""
    return f"INSERT INTO customer_fact ({_COLUMNS})\n{_facts('x.id', postgres, 'FROM customer x')};\n"


_SOURCES = ("support_case", "rights_request", "consent_current")
_UPDATE_OF = {"support_case": " OF customer_id, status", "rights_request": " OF customer_id, status", "consent_current": ""}

_POSTGRES = f"""
CREATE TABLE customer_fact (
    customer_id UUID NOT NULL PRIMARY KEY,
    open_case BOOLEAN NOT NULL,
    fulfilling_request BOOLEAN NOT NULL,
    purposes TEXT
);
COMMENT ON TABLE customer_fact IS
    'The facts a staff read''s guards decide on, per customer, kept by triggers.';
CREATE FUNCTION customer_fact_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {_recompute("OLD.customer_id", True)}
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id) THEN
        {_recompute("NEW.customer_id", True)}
    END IF;
    RETURN NULL;
END
$$;
""" + "".join(
    f"CREATE TRIGGER customer_fact_kept AFTER INSERT OR DELETE OR UPDATE{_UPDATE_OF[t]} ON {t}\n"
    f"    FOR EACH ROW EXECUTE FUNCTION customer_fact_kept();\n"
    for t in _SOURCES
) + backfill(True)

_SQLITE = """
CREATE TABLE customer_fact (
    customer_id CHAR(36) NOT NULL PRIMARY KEY,
    open_case INT NOT NULL,
    fulfilling_request INT NOT NULL,
    purposes TEXT
) WITHOUT ROWID;
""" + "".join(
    f"CREATE TRIGGER customer_fact_{t}_insert AFTER INSERT ON {t} BEGIN\n"
    f"{_recompute('NEW.customer_id', False)}END;\n"
    f"CREATE TRIGGER customer_fact_{t}_update AFTER UPDATE{_UPDATE_OF[t]} ON {t} BEGIN\n"
    f"{_recompute('OLD.customer_id', False)}{_recompute('NEW.customer_id', False)}END;\n"
    f"CREATE TRIGGER customer_fact_{t}_delete AFTER DELETE ON {t} BEGIN\n"
    f"{_recompute('OLD.customer_id', False)}END;\n"
    for t in _SOURCES
) + backfill(False)


async def create_facts(apps, schema_editor):
    postgres = schema_editor.client.capabilities.dialect == "postgres"
    await schema_editor.client.execute_script(_POSTGRES if postgres else _SQLITE)


class Migration(migrations.Migration):
    dependencies = [('models', '0021_consent_current')]

    initial = False

    operations = [
        ops.RunPython(create_facts),
        StateOnly(
            ops.CreateModel(
                name='CustomerFact',
                fields=[
                    ('customer_id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                    ('open_case', fields.BooleanField()),
                    ('fulfilling_request', fields.BooleanField()),
                    ('purposes', fields.TextField(null=True)),
                ],
                options={'table': 'customer_fact', 'app': 'models', 'pk_attr': 'customer_id', 'table_description': "The facts a staff read's guards decide on, per customer, kept by triggers."},
                bases=['Model'],
            )
        ),
    ]
