"""The one registry of data categories, purposes, actions and roles (docs/ARCHITECTURE.md:
vocabulary)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    CONTACT_EMAIL = "contact.email"
    CONTACT_PHONE = "contact.phone"
    CONTACT_ADDRESS = "contact.address"
    ACCOUNT_CREDENTIALS = "account.credentials"
    DEVICE_IP = "device.ip"
    DEVICE_BROWSER = "device.browser"
    BEHAVIOR_BROWSING = "behavior.browsing"
    CONSENT_HISTORY = "consent.history"
    RIGHTS_REQUESTS = "rights.requests"
    SUPPORT_CASES = "support.cases"


class Action(StrEnum):
    READ = "read"
    READ_MASKED = "read_masked"
    WRITE = "write"
    ERASE = "erase"
    EXPORT = "export"
    DISCLOSE = "disclose"


class Role(StrEnum):
    CUSTOMER_CARE = "customer_care"
    MARKETING = "marketing"
    FRAUD_ANALYST = "fraud_analyst"
    PRIVACY_OFFICER = "privacy_officer"
    LEGAL = "legal"
    AUDITOR = "auditor"
    ADMIN = "admin"


class PurposeKey(StrEnum):
    SERVICE = "service"
    SUPPORT = "support"
    SECURITY = "security"
    LEGAL = "legal"
    MARKETING_EMAIL = "marketing.email"
    MARKETING_ADS = "marketing.ads"
    ANALYTICS = "analytics"
    PERSONALIZATION = "personalization"


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    description: str
    legal_basis: str
    consent_required: bool


PURPOSES: dict[str, Purpose] = {
    p.key: p
    for p in (
        Purpose(PurposeKey.SERVICE, "Provide the services you asked for", "contract", False),
        Purpose(PurposeKey.SUPPORT, "Customer service and complaints", "contract", False),
        Purpose(
            PurposeKey.SECURITY, "Detect and prevent fraud and abuse", "legitimate_interest", False
        ),
        Purpose(
            PurposeKey.LEGAL,
            "Comply with the law and answer rights requests",
            "legal_obligation",
            False,
        ),
        Purpose(PurposeKey.MARKETING_EMAIL, "Marketing email", "consent", True),
        Purpose(PurposeKey.MARKETING_ADS, "Personalised advertising", "consent", True),
        Purpose(
            PurposeKey.ANALYTICS, "Analytics of visits to improve the services", "consent", True
        ),
        Purpose(
            PurposeKey.PERSONALIZATION, "A personalised experience on our sites", "consent", True
        ),
    )
}

CONSENT_PURPOSES = frozenset(k for k, p in PURPOSES.items() if p.consent_required)

CONDITIONS = (
    "open_case",
    "self",
    "fulfilling_request",
    *(f"consent:{p}" for p in sorted(CONSENT_PURPOSES)),
)
"""What can hold on an object: a rule's condition is one of these (or `*`, none)."""

PERSONAL_DATA = frozenset(Category)
"""Every category is personal data: each one describes, or is held about, one customer
(their contact data, credentials, devices, browsing, consents, rights requests and
support messages). A non-personal category added later leaves this set."""

VALUE_ACTIONS = frozenset(
    {Action.READ, Action.READ_MASKED, Action.EXPORT, Action.ERASE, Action.DISCLOSE}
)
"""The actions that show or hand over a personal-data value (or decide its fate)."""

VALUE_BLIND_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
"""Separation of duties (docs/ARCHITECTURE.md: vocabulary): the roles that run the system and check
it never see a personal-data value. The engine enforces it (authz/enforcer.py) and no policy
change may undo it (authz/separation.py)."""

PERSONAL_DATA_ROLES = frozenset(Role) - VALUE_BLIND_ROLES
"""The job roles that work with personal data; none is held with a value-blind role."""


class ConsentSource(StrEnum):
    """Where a consent record came from."""

    REGISTRATION = "registration"
    PREFERENCE_CENTRE = "preference_centre"
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    GPC = "gpc"
    STAFF = "staff"


APPROVER_ROLES = frozenset({Role.PRIVACY_OFFICER})
"""Who approves a proposal to widen access to personal data (four eyes): a role that
answers for the policy's promises, never one that runs the system (admin) or checks it."""
