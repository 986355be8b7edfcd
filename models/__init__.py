"""Tortoise models: one module a feature, all re-exported here for model discovery."""

from models.audit import AuditEvent, AuditPosting, AuditSubject
from models.audit_tree import AuditCheckpoint, AuditLeaf, AuditLogKey, AuditNode
from models.authz import PolicyChange, PolicyProposal, PolicyRule, PolicyVersion
from models.campaign import Campaign
from models.consent import ConsentRecord, CurrentConsent
from models.customer import Customer, EmailToken, PasswordResetToken
from models.customer_fact import CustomerFact
from models.deferred import DeferredIntake
from models.employee import Employee, EmployeeRole
from models.limits import RateCount
from models.notices import RecipientNotice
from models.outbox import OutboxMessage
from models.policy import PolicyAcceptance, PrivacyPolicy
from models.retention import RetentionRule
from models.rights import DataExport, LegalHold, RightsRequest, RightsTransition
from models.session import LoginFailure, Session
from models.sharing import Disclosure, Processor
from models.support import SupportCase
from models.visit import VisitEvent

VIEWS = frozenset({AuditSubject._meta.db_table})
"""Models read from a view (no rows of their own): nothing empties, scans or counts them."""

__all__ = [
    "VIEWS",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditLeaf",
    "AuditLogKey",
    "AuditNode",
    "AuditPosting",
    "AuditSubject",
    "Campaign",
    "ConsentRecord",
    "CurrentConsent",
    "Customer",
    "CustomerFact",
    "DataExport",
    "DeferredIntake",
    "Disclosure",
    "EmailToken",
    "Employee",
    "EmployeeRole",
    "LegalHold",
    "LoginFailure",
    "OutboxMessage",
    "PasswordResetToken",
    "PolicyAcceptance",
    "PolicyChange",
    "PolicyProposal",
    "PolicyRule",
    "PolicyVersion",
    "PrivacyPolicy",
    "Processor",
    "RateCount",
    "RecipientNotice",
    "RetentionRule",
    "RightsRequest",
    "RightsTransition",
    "Session",
    "SupportCase",
    "VisitEvent",
]
