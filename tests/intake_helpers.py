"""The intake worker, run by hand: requests by email address are handled after the
answer (api/rights/intake.py), so a test runs the worker where a server's loop would."""

from __future__ import annotations

from api.rights.intake import handle_deferred
from api.services import Services


async def run_intake(services: Services) -> int:
    """Handle every deferred request now due, as one round of the loop; returns how many."""
    return await handle_deferred(services=services)
