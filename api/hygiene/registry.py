"""The one list of text arguments that differ from the defaults, keyed by where they are in
the schema: `Type.field.argument` for an argument, `InputType.field` for a field of an input.

Every other String is one line of at most 1,000 characters and every other ID at most 64 (a
UUID has 36). A limit is the most the argument may hold as sent:
- where the value is stored or compared as sent and nothing else bounds it, the size of its
  column (models/), so no database ever sees a value too long for it;
- where the resolver trims or normalises the value and checks its length itself (addresses,
  names, emails, references, subjects), the default leaves room for the resolver's own
  per-field InputError, which clients already handle, and only bounds the work;
- free text is declared here: 10,000 characters (no less than its resolvers allow, where they
  check), or for a document as much as the 64 KiB request body holds. Only free text may hold
  tabs and line breaks.
tests/test_input_rules.py checks that every key names a String or ID of the schema and that
the limits of values compared as sent fit their columns."""

from __future__ import annotations

from api.hygiene.rules import Kind, Rule

LINE = Rule(1_000)
ID = Rule(64)
TEXT = Rule(10_000, Kind.TEXT)
"""Free text a person writes: a message, a reason, details."""
LONG_TEXT = Rule(100_000, Kind.TEXT)
"""A document: in practice the 64 KiB request body is the bound."""
SECRET = Rule(1_000, Kind.SECRET)
"""A password (the resolver allows 256 after NFKC)."""
CURSOR = Rule(200)
"""An opaque `after` cursor; the longest we hand out has 104 characters."""
TOKEN = Rule(10_000)
"""A token from a link: hashed, never stored; any garbage gets the mutation's TokenError."""

DEFAULTS: dict[str, Rule] = {"String": LINE, "ID": ID}

RULES: dict[str, Rule] = {
    # Free text.
    "Mutation.openSupportCase.message": TEXT,  # resolver: 10,000 trimmed
    "Mutation.submitRightsRequest.details": TEXT,  # resolver: 4,000
    "Mutation.submitRightsRequestByEmail.details": TEXT,
    "Mutation.reviewRightsRequest.reason": Rule(4_000, Kind.TEXT),  # mailed; nothing else checks
    "Mutation.extendRightsRequest.reason": Rule(4_000, Kind.TEXT),
    "Mutation.placeLegalHold.reason": TEXT,  # resolver: 2,000 trimmed
    "Mutation.releaseLegalHold.reason": TEXT,
    "Mutation.publishPolicy.summary": TEXT,  # resolver: 2,000; mailed in the notice
    "Mutation.publishPolicy.text": LONG_TEXT,
    "Mutation.createCampaign.bodyText": LONG_TEXT,  # resolver: 100,000
    "Mutation.createCampaign.bodyHtml": LONG_TEXT,  # resolver: 200,000
    # One line, longer than the default: the resolver answers up to its NOTE_MAX (2,000).
    "Mutation.recordDisclosure.note": Rule(4_000),
    # Secrets.
    "Mutation.login.password": SECRET,
    "Mutation.staffLogin.password": SECRET,
    "Mutation.changePassword.currentPassword": SECRET,
    "Mutation.changePassword.newPassword": SECRET,
    "RegisterInput.password": SECRET,
    "UpdateProfileInput.currentPassword": SECRET,
    "Mutation.resetPassword.newPassword": SECRET,
    # Tokens from links (tests pin TokenError for 2,000 and 5,000 characters of garbage).
    "Mutation.verifyEmail.token": TOKEN,
    "Mutation.unsubscribe.token": TOKEN,
    "Mutation.resetPassword.token": TOKEN,
    # A signed note (docs/AUDIT_LOG.md): lines, checked by the verifier's own parser.
    "Query.verifyAuditLog.checkpoints": Rule(8_192, Kind.TEXT),
    # Compared as sent with a bounded column: its size.
    "Query.supportQueue.status": Rule(16),  # support_case.status
    "Mutation.publishPolicy.version": Rule(32),  # privacy_policy.version
    "Mutation.acceptPolicy.version": Rule(32),  # policy_acceptance.version
    "AccessDecisionFilter.event": Rule(16),  # audit_event.event
    "DisclosureFilter.recipient": Rule(200),  # disclosure.recipient
    "Query.customers.search": Rule(320),  # customer.email; a phone number is shorter
    # Cursors.
    "Query.customers.after": CURSOR,
    "Query.accessDecisions.after": CURSOR,
    "Query.disclosureLedger.after": CURSOR,
    "Query.rightsRequests.after": CURSOR,
    "Customer.accessLog.after": CURSOR,
    "Customer.visits.after": CURSOR,
}


def rule_for(key: str, scalar: str) -> Rule:
    """The rule of the argument at `key`, of scalar type `scalar` (String or ID)."""
    return RULES.get(key) or DEFAULTS[scalar]
