"""The record of processing activities (GDPR Article 30), generated from what Custos
enforces rather than written by hand: the purposes and their legal bases, the data
categories each purpose uses (from the access policy in force), the recipients (the
processor registry and the kinds of disclosure in the ledger), transfers outside the EEA,
the retention of each category (the rules the purge runs) and the security measures."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from datetime import datetime
from typing import Any

from tortoise.functions import Count, Max

from api.clock import iso
from api.customers.countries import EEA
from api.retention.rules import BY_KEY
from api.services import Services
from api.sharing.ledger import LegalBasis
from api.sharing.processors import is_active
from authz.registry import PURPOSES, Action, Category
from models import Disclosure, Processor, RetentionRule

FORMAT = "custos.processing-record/2"
"""2 (issue 17): `controller` is an object (name, contact, dpo, url), no longer the URL."""
_USES = frozenset({Action.READ, Action.READ_MASKED, Action.WRITE, Action.EXPORT, Action.DISCLOSE})

SECURITY_MEASURES = (
    "Access by job role, data category and declared purpose (Casbin), denied by default; "
    "every decision, allowed or denied, in a hash-chained, append-only audit log.",
    "Passwords hashed with argon2id; sessions are random 128-bit tokens stored hashed; "
    "sign-in throttled per account and per address.",
    "IP addresses of analytics visits truncated at collection; the full address of "
    "security events deleted by retention.",
    "Disclosures recorded in an append-only, hash-chained ledger.",
    "Erasure and retention purges that honour legal holds and are logged.",
)


def _category_purposes(policy: list[list[str]]) -> dict[str, set[str]]:
    """Each category -> the purposes some rule allows using it for (named purposes only;
    a rule for any purpose adds nothing here)."""
    used: dict[str, set[str]] = defaultdict(set)
    for rule in policy:
        _, pattern, action, purpose, _, effect = rule[:6]
        if effect != "allow" or purpose not in PURPOSES or (action not in _USES and action != "*"):
            continue
        for category in Category:
            if category is not Category.ACCOUNT_CREDENTIALS and fnmatch.fnmatchcase(
                category, pattern
            ):
                used[category].add(purpose)
    return used


def _purposes(used: dict[str, set[str]]) -> list[dict[str, Any]]:
    return [
        {
            "key": p.key,
            "description": p.description,
            "legalBasis": p.legal_basis,
            "consentRequired": p.consent_required,
            "categories": sorted(c for c, purposes in used.items() if p.key in purposes),
        }
        for p in PURPOSES.values()
    ]


def _processor(p: Processor, *, now: datetime) -> dict[str, Any]:
    return {
        "name": p.name,
        "country": p.country,
        "contractReference": p.contract_reference,
        "purposes": list(p.purposes),
        "categories": list(p.categories),
        "activeFrom": iso(p.active_from),
        "activeTo": iso(p.active_to),
        "active": is_active(p, now=now),
        "outsideEea": p.country not in EEA,
    }


async def _disclosures() -> list[dict[str, Any]]:
    """Recorded disclosures (not processor shares) by recipient and basis: counts only."""
    rows = (
        await Disclosure.exclude(legal_basis=LegalBasis.PROCESSOR_CONTRACT)
        .annotate(count=Count("id"), last=Max("at"))
        .group_by("recipient", "legal_basis")
        .order_by("recipient", "legal_basis")
        .values("recipient", "legal_basis", "count", "last")
    )
    return [
        {
            "recipient": r["recipient"],
            "legalBasis": r["legal_basis"],
            "disclosures": int(r["count"]),
            "last": iso(r["last"]),
        }
        for r in rows
    ]


def _retention(rules: list[RetentionRule]) -> list[dict[str, Any]]:
    return [
        {
            "category": r.category,
            "anchor": r.anchor,
            "period": r.period,
            "description": target.description
            if (target := BY_KEY.get((r.category, r.anchor)))
            else "",
        }
        for r in rules
    ]


def _categories(
    used: dict[str, set[str]], active: list[Processor], rules: list[RetentionRule]
) -> list[dict[str, Any]]:
    """Each category: the purposes using it, the processors receiving it now, its rules."""
    return [
        {
            "category": c.value,
            "purposes": sorted(used.get(c, set())),
            "processors": sorted(p.name for p in active if c in p.categories),
            "retention": [
                {"anchor": r.anchor, "period": r.period} for r in rules if r.category == c
            ],
        }
        for c in Category
        if c is not Category.ACCOUNT_CREDENTIALS
    ]


def _controller(services: Services) -> dict[str, str]:
    """Article 30(1)(a): the controller's name and contact details and the DPO's, from
    the settings (CUSTOS_CONTROLLER_NAME, CUSTOS_CONTROLLER_CONTACT, CUSTOS_DPO_CONTACT),
    and the address where the service runs."""
    named = services.settings.controller
    return {
        "name": named.name,
        "contact": named.contact,
        "dpo": named.dpo,
        "url": services.settings.public_url,
    }


async def processing_record(*, services: Services) -> dict[str, Any]:
    """The register as one JSON-ready document (format custos.processing-record/2)."""
    now = services.clock.now()
    used = _category_purposes(services.authorizer.enforcer.get_policy())
    processors = list(await Processor.all().order_by("name"))
    rules = list(await RetentionRule.all().order_by("category", "anchor"))
    active = [p for p in processors if is_active(p, now=now)]
    return {
        "format": FORMAT,
        "generatedAt": iso(now),
        "controller": _controller(services),
        "purposes": _purposes(used),
        "categories": _categories(used, active, rules),
        "recipients": {
            "processors": [_processor(p, now=now) for p in processors],
            "disclosures": await _disclosures(),
        },
        "transfersOutsideEea": sorted(p.name for p in active if p.country not in EEA),
        "retention": _retention(rules),
        "securityMeasures": list(SECURITY_MEASURES),
    }
