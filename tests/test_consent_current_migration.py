"""Migration 0021 starts `consent_current` from the consent history a database already
holds (ties in time broken by id, records out of time order, purposes that need no
consent), and from then on its triggers keep it. Run on a database of its own (a file, or
a new PostgreSQL database beside the suite's), migrated to 0020 first."""

from __future__ import annotations

from tests.migration_helpers import run_script

MIGRATE_ACROSS = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from tortoise.migrations.executor import MigrationTarget
from api.db import APP_LABEL, _executor, close_db, init_db, migrate
from models import ConsentRecord, CurrentConsent
from tests.conftest import stored_customer

url = sys.argv[1]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY = [  # customer, purpose, granted, hours after T0 (written in this order)
    (0, "analytics", True, 2), (0, "analytics", False, 1),  # the later one first
    (0, "marketing.email", True, 1), (0, "marketing.email", False, 1),  # a tie: by id
    (1, "analytics", False, 0), (1, "analytics", True, 3), (1, "service", True, 0),
]

def rows(found):
    return sorted([str(r.customer_id) == ids[1], r.purpose, r.granted] for r in found)

async def main():
    global ids
    await init_db(url)
    try:
        await _executor(url).migrate([MigrationTarget(APP_LABEL, "0020_audit_subject_key")])
        customers = [await stored_customer(n, at=T0) for n in range(2)]
        ids = [str(c.id) for c in customers]
        for n, purpose, granted, hours in HISTORY:
            await ConsentRecord.create(
                customer=customers[n], purpose=purpose, granted=granted, source="x",
                at=T0 + timedelta(hours=hours),
            )
        applied = await migrate(url)
        started = rows(await CurrentConsent.all())
        await ConsentRecord.create(
            customer=customers[1], purpose="analytics", granted=False, source="x",
            at=T0 + timedelta(hours=4),
        )
        kept = rows(await CurrentConsent.all())
        print(json.dumps({"applied": applied, "started": started, "kept": kept}))
    finally:
        await close_db()

asyncio.run(main())
"""


def test_the_table_starts_from_the_history_and_triggers_keep_it(fresh_database: str) -> None:
    # given a database at 0020 holding a consent history
    found = run_script(MIGRATE_ACROSS, fresh_database)
    # when it is migrated: 0021 ran, and each (customer, purpose) holds its latest record
    assert "0021_consent_current" in found["applied"]
    assert found["started"] == [
        [False, "analytics", True],  # 2 h beats the 1 h written after it
        [False, "marketing.email", False],  # the same time: the later id
        [True, "analytics", True],
        [True, "service", True],
    ]
    # and a record written after the migration is kept by the triggers
    assert [True, "analytics", False] in found["kept"]
    assert [True, "analytics", True] not in found["kept"]
