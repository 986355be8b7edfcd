"""The per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from graphql import FieldNode
from graphql.pyutils import Path
from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from api.customers.service import RequestMeta
from api.denied_fields import Denied, item, shared_denial
from api.errors import Unauthenticated
from api.observability.metrics import ROLE_REQUIRED, count_decision, role_label
from api.security.sessions import COOKIE_NAME, IssuedSession, Viewer
from api.services import Services
from api.visits.service import VISITOR_COOKIE
from authz.adapter import employee_subject
from authz.audit import AuditTrail, category_bit
from authz.enforcer import CUSTOMER_SUBJECT, Decision, Denial

K = TypeVar("K")
V = TypeVar("V")

_Known = tuple["Read", dict[object, int], Decision | None, int]
"""A read decided in this request: outcome, subjects logged (each with its categories as
bits, authz.audit.category_bit), the denial if any, and the category's bit."""
FieldReads = tuple[
    tuple["Read", ...], tuple[Decision | None, ...], tuple[tuple[dict[object, int], int], ...]
]
"""An object's guarded fields decided together (Context.read_fields): each field's outcome
and denial, in the order of its categories, and where its subject is noted (each decision's
subjects, with the bits of the categories it decided)."""
_MASK_ONLY = Decision(False, "", "only a masked read is allowed", Denial.NO_RULE)
"""A field with no mask whose category the viewer may only read masked: no full read."""


class Read(Enum):
    FULL = "full"
    MASKED = "masked"
    DENIED = "denied"


_FULL, _MASKED, _DENIED = Read.FULL, Read.MASKED, Read.DENIED  # a name, not an enum lookup


@dataclass
class Context:
    request: Request
    response: Response
    services: Services
    viewer: Viewer
    request_id: str
    audit: AuditTrail
    _decisions: dict[tuple[str, str, str, str, tuple[str, ...]], Decision] = field(
        default_factory=dict
    )
    _enforced: dict[tuple[str, str, str, tuple[str, ...], int], Decision] = field(
        default_factory=dict
    )
    _reads: dict[tuple[str, str, tuple[str, ...], bool], _Known] = field(default_factory=dict)
    _field_reads: dict[tuple[tuple[str, ...], str, tuple[str, ...], bool], FieldReads] = field(
        default_factory=dict
    )
    denials: list[str] = field(default_factory=list)
    """Denied fields' FORBIDDEN errors, each as the JSON of its entry in the response's
    `errors` (deny_field)."""
    # a page's denials keep nothing alive that the cyclic collector tracks: each is text,
    # written from its field's shared parts and its parent's path items when it is denied
    # (holding the parents' path objects till the end, the collector's passes over a page
    # of hundreds of denials cost twice as much)
    # by (field node, decision, category, purpose), their ids: see deny_field
    _denied_shared: dict[tuple[int, int, str, str], Denied] = field(default_factory=dict)
    _last_parent: Path | None = None
    _last_items: str = ""
    """The parent path of the latest denied field, and its JSON list items."""
    _path_items: dict[int, str] = field(default_factory=dict)
    """Paths' JSON list items, by the path's id (`_kept_paths` keeps each path alive, so its
    id stays its own): the lists denied objects are in, and any other parent looked up."""
    _kept_paths: list[Path] = field(default_factory=list)
    _last_denial: Decision | None = None
    """The denied read decision read_access answered last (deny_field explains it)."""
    _own_of: Viewer | None = None
    _actor_of: Viewer | None = None
    _actor_fields: tuple[str, str, str, str, str] = ("", "", "", "", "")
    _own_id: str | None = None
    """The signed-in customer's own id as text, worked out for the viewer `_own_of`."""
    _loaders: dict[Any, DataLoader[Any, Any]] = field(default_factory=dict)

    async def load(self, batch: Callable[[list[K]], Awaitable[list[V]]], key: K) -> V:
        """Load through this request's DataLoader for `batch`: a page of N objects costs
        one query per batch function, not N."""
        loader = self._loaders.get(batch)
        if loader is None:
            loader = self._loaders[batch] = DataLoader(load_fn=batch)
        value: V = await loader.load(key)
        return value

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def subject_id(self) -> UUID:
        """The signed-in customer's or employee's id (fields guard who is signed in)."""
        if self.viewer.subject_id is None:
            raise Unauthenticated()
        return self.viewer.subject_id

    @property
    def meta(self) -> RequestMeta:
        return RequestMeta(
            ip=self.client_ip,
            user_agent=self.request.headers.get("user-agent"),
            trail=self.audit,
            visitor_id=self.request.cookies.get(VISITOR_COOKIE),
        )

    def audit_event(
        self,
        *,
        event: str,
        operation: str,
        subject_id: object = "",
        reason: str = "",
        decision: str = "allow",
    ) -> None:
        """An event done (or, with decision "deny", refused) for the signed-in viewer."""
        kind, actor_id, roles, label, _ = self._actor()
        if event == "access" and decision == "deny":  # an operation refused for the role
            count_decision(label, False, ROLE_REQUIRED)
        self.audit.event(
            at=self.services.clock.now(),
            event=event,
            operation=operation,
            decision=decision,
            actor_kind=kind,
            actor_id=actor_id,
            roles=roles,
            subject_id=subject_id,
            reason=reason,
        )

    def act_as_customer(self, customer_id: UUID, session_id: int | None = None) -> None:
        """The rest of this request is the customer's own: they just proved who they are
        (signed in, or followed a link mailed to them)."""
        self.viewer = Viewer("customer", customer_id, session_id, frozenset())
        self._enforced.clear()
        self._decisions.clear()
        self._reads.clear()
        self._field_reads.clear()

    def _enforce(
        self, category: str, action: str, purpose: str, conditions: tuple[str, ...]
    ) -> Decision:
        """Casbin's answer for this viewer; it does not depend on the subject's id, so one
        call serves a whole page of customers with the same conditions. Kept per policy
        version: an answer is never logged with a version it was not decided under."""
        authorizer = self.services.authorizer
        key = (category, action, purpose, conditions, authorizer.version)
        cached = self._enforced.get(key)
        if cached is None:
            cached = authorizer.decide(
                subject=self._actor()[4],
                category=category,
                action=action,
                purpose=purpose,
                conditions=conditions,
            )
            self._enforced[key] = cached
        return cached

    def _log_decision(
        self,
        *,
        category: str,
        action: str,
        purpose: str,
        subject_id: object,
        decision: Decision,
        conditions: tuple[str, ...],
    ) -> dict[object, int]:
        """Log a decision just made by _enforce (no await between: the policy version is
        the one it was decided under); returns its subjects (see AuditTrail.access). Counted
        in the metrics as logged: once per decision, not per field or subject."""
        kind, actor_id, roles, label, _ = self._actor()
        count_decision(label, decision.allowed, decision.code)
        services = self.services
        return self.audit.access(
            at=services.clock.now(),
            actor_kind=kind,
            actor_id=actor_id,
            roles=roles,
            category=category,
            action=action,
            purpose=purpose,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            reason=decision.logged_reason,
            conditions=conditions,
            policy_version=services.authorizer.version,
            subject_id=subject_id,
        )

    def _actor(self) -> tuple[str, str, str, str, str]:
        """The viewer as a log row names them (kind, id as text, roles sorted and
        comma-joined), as the metrics label them and as Casbin knows them: worked out once
        per viewer, not once per decision."""
        viewer = self.viewer
        if viewer is not self._actor_of:
            roles = ",".join(sorted(viewer.roles))
            actor_id = str(viewer.subject_id or "")
            if viewer.is_employee:
                subject = employee_subject(actor_id)
            elif viewer.is_customer:
                subject = CUSTOMER_SUBJECT
            else:
                subject = ""
            label = role_label(viewer.kind, roles)
            self._actor_fields = (viewer.kind, actor_id, roles, label, subject)
            self._actor_of = viewer
        return self._actor_fields

    def decide(
        self,
        *,
        category: str,
        action: str,
        purpose: str,
        subject_id: object = "",
        conditions: tuple[str, ...] = (),
    ) -> Decision:
        """Decide once per (category, action, purpose, subject) in this request, and log
        the decision, allowed or denied, with the rule that matched."""
        key = (category, action, purpose, str(subject_id), conditions)
        cached = self._decisions.get(key)
        if cached is None:
            cached = self._enforce(category, action, purpose, conditions)
            self._decisions[key] = cached
            self._log_decision(
                category=category,
                action=action,
                purpose=purpose,
                subject_id=str(subject_id),
                decision=cached,
                conditions=conditions,
            )
        return cached

    def may_read(self, *, category: str, purpose: str, conditions: tuple[str, ...]) -> bool:
        """Whether an employee may read (or read masked) a category under these conditions,
        decided without a log row: for a caller that logs what it does with the answer in
        a form of its own (a search must not log the matches it hides)."""
        return any(
            self._enforce(category, action, purpose, conditions).allowed
            for action in ("read", "read_masked")
        )

    def read_access(
        self, category: str, purpose: str, subject_id: str, conditions: tuple[str, ...]
    ) -> Read:
        """How much of a personal-data value the viewer may see: FULL, MASKED or DENIED.
        The outcome depends on the subject only through its conditions, so it is decided
        once per (category, purpose, conditions) in a request and each further subject is
        added to that decision's log row (the outcome, with the rule that decided it; a
        masked read logs `read_masked`). `subject_id` is the customer's id as text. Called
        once per guarded field shown: the common case is a dictionary lookup and one
        subject noted."""
        own = subject_id == self._own_text()
        known = self._reads.get((category, purpose, conditions, own))
        if known is not None:
            outcome, subjects, self._last_denial, bit = known
            subjects[subject_id] = subjects.get(subject_id, 0) | bit
            return outcome
        return self._decide_read(category, purpose, subject_id, conditions, own)

    def _own_text(self) -> str | None:
        """The signed-in customer's own id as text (None for anyone else), worked out once
        per viewer: a read of their own data is decided with the condition `self`."""
        viewer = self.viewer
        if viewer is not self._own_of:
            self._own_of = viewer
            self._own_id = str(viewer.subject_id) if viewer.is_customer else None
        return self._own_id

    def read_fields(self, categories: tuple[str, ...], access: Any) -> FieldReads:
        """read_access for each of an object's guarded fields at once (api/executor.py asks
        once per object, the categories of its selection in order; `access` is the object's
        api.guards.Access): the same outcomes, decisions and log rows, with the object's
        subject noted once per decision rather than once per field. The first object of a
        key decides each category through read_access; every further one is a dictionary
        lookup and one note per decision."""
        subject_id, purpose, conditions = access
        own = subject_id == self._own_text()
        key = (categories, purpose, conditions, own)
        known = self._field_reads.get(key)
        if known is None:
            known = self._field_reads[key] = self._first_field_reads(key, subject_id)
            return known
        for subjects, bits in known[2]:
            subjects[subject_id] = subjects.get(subject_id, 0) | bits
        return known

    def _first_field_reads(
        self, key: tuple[tuple[str, ...], str, tuple[str, ...], bool], subject_id: str
    ) -> FieldReads:
        """read_fields' first object of a key: each category read (and its subject noted) by
        read_access, then where a further object's subject is to be noted."""
        categories, purpose, conditions, own = key
        outcomes, denials = [], []
        notes: dict[int, tuple[dict[object, int], int]] = {}
        for category in categories:
            outcomes.append(self.read_access(category, purpose, subject_id, conditions))
            _, subjects, denial, bit = self._reads[(category, purpose, conditions, own)]
            denials.append(denial)
            noted = notes.get(id(subjects))
            notes[id(subjects)] = (subjects, bit | (noted[1] if noted else 0))
        return tuple(outcomes), tuple(denials), tuple(notes.values())

    def _decide_read(
        self, category: str, purpose: str, subject_id: str, conditions: tuple[str, ...], own: bool
    ) -> Read:
        """read_access's first read of a (category, purpose, conditions, own) key."""
        key = (category, purpose, conditions, own)
        if own:
            conditions = (*conditions, "self")
        decision = self._enforce(category, "read", purpose, conditions)
        denial = None if decision.allowed else decision
        action = "read"
        outcome = _FULL if decision.allowed else _DENIED
        if not decision.allowed:
            masked = self._enforce(category, "read_masked", purpose, conditions)
            if masked.allowed:
                decision, action, outcome = masked, "read_masked", _MASKED
        subjects = self._log_decision(
            category=category,
            action=action,
            purpose=purpose,
            subject_id=subject_id,
            decision=decision,
            conditions=conditions,  # with "self" on the customer's own data, as decided
        )
        self._reads[key] = (outcome, subjects, denial, category_bit(category))
        self._last_denial = denial
        return outcome

    def deny_field(
        self,
        nodes: list[FieldNode],
        parent: Path | None,
        key: str,
        category: str,
        purpose: str,
        denial: Decision | None = None,
    ) -> None:
        """A denied field (its nodes in the query; in the response, its parent's path and
        its key): null in `data`, a FORBIDDEN error at its path. No exception, no
        traceback, no GraphQLError: a page may deny hundreds of fields, and a denial must
        cost no more than an allowed read. So this writes the field's entry of `errors` as
        JSON text at once, from its shared parts (message, locations and extensions,
        looked up once per field of the query and decision in a request, and worked out
        once per process: api/denied_fields.py) and its parent's path items
        (once per parent: sibling fields come one after another). The guard calls this
        right after read_access (no await between), so the decision explained is that
        read's; after read_fields, it passes the field's `denial`."""
        decision = denial or self._last_denial or _MASK_ONLY
        # the shared parts of this field of the query and decision (the node holds the
        # field's response key; node and decision live all request, so their ids stay
        # theirs): one lookup, however the page's customers alternate between decisions
        shared_key = (id(nodes[0]), id(decision), category, purpose)
        last = self._denied_shared.get(shared_key)
        if last is None:
            version = self.services.authorizer.version
            last = shared_denial(nodes, key, category, purpose, decision, version)
            self._denied_shared[shared_key] = last
        if parent is None:  # a field at the root
            self.denials.append(last[4])
            return
        if parent is not self._last_parent:
            self._last_items = self._parent_items(parent)
            self._last_parent = parent
        self.denials.append(f"{last[3]}{self._last_items}{last[5]}")

    def denied_errors(self) -> list[str]:
        """The FORBIDDEN errors of denied fields, each as the JSON of its entry in the
        response's `errors` (api/app.py writes them in as they are)."""
        return self.denials

    def _parent_items(self, parent: Path) -> str:
        """A denied field's parent path as JSON list items. The common case is an object
        in a list whose items are known already: the list's, its index and the key."""
        index = parent.prev
        if (
            index is not None
            and type(index.key) is int
            and type(parent.key) is str
            and (base := self._path_items.get(id(index.prev))) is not None
        ):
            return f'{base},{index.key},"{parent.key}"'
        return self._items_of(parent)

    def _items_of(self, path: Path) -> str:
        """A response path as the items of its JSON list, root first, kept by the id of
        each path object on the way (`_kept_paths` keeps them, and so their ids, alive)."""
        known = self._path_items
        unknown: list[Path] = []
        at: Path | None = path
        items = ""
        while at is not None:
            found = known.get(id(at))
            if found is not None:
                items = found
                break
            unknown.append(at)
            at = at.prev
        for step in reversed(unknown):
            key = item(step.key)
            items = f"{items},{key}" if items else key
            known[id(step)] = items
            self._kept_paths.append(step)
        return items

    def set_session_cookie(self, issued: IssuedSession) -> None:
        self.response.set_cookie(
            COOKIE_NAME,
            issued.token,
            max_age=issued.max_age_seconds,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )

    def clear_session_cookie(self) -> None:
        self.response.delete_cookie(
            COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax"
        )


def session_token(request: Request) -> str | None:
    """`Authorization: Bearer <token>` first, then the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE_NAME)


Info = _Info[Context, None]
