"""Demo data for `make run` (development only), shaped to fit the documented examples: a few
customers (six with analytics consent and visits in each of the last four weeks, enough for
`insights` to show a group at the default minimum group size of 5), one with an open support
case, one employee per role, four processors whose names no documented `createProcessor`
example uses, a completed correction that two of them acknowledged (api/demo_recipients.py),
and a `publishPolicy` example dated relative to today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.customers.service import RequestMeta, register_customer, validate_registration
from api.demo_recipients import seed_corrected_phone
from api.errors import InputInvalid
from api.security.network import truncate_ip
from api.services import Services
from api.sharing.processors import ProcessorDraft, create_processor
from api.staff.service import create_employee
from api.support.service import open_case
from authz.registry import PurposeKey, Role
from models import (
    Customer,
    EmailToken,
    Employee,
    OutboxMessage,
    Processor,
    SupportCase,
    VisitEvent,
)

DEMO_PASSWORD = "custos-demo-password"  # noqa: S105 (printed on purpose; development only)

_CUSTOMERS = [
    (
        "ada@example.com",
        "+44 20 7946 0958",
        ("1 Analytical Row", "London", "EC1A 1BB", "GB"),
        [("marketing.email", True), ("analytics", True)],
    ),
    (
        "ben@example.com",
        "+1 212 555 0142",
        ("42 Broadway", "New York", "10004", "US"),
        [("marketing.email", False)],
    ),
    ("chloe@example.com", "+33 1 23 45 67 89", ("5 rue de Rivoli", "Paris", "75001", "FR"), []),
    (
        "dara@example.com",
        "+49 30 901820",
        ("Unter den Linden 7", "Berlin", "10117", "DE"),
        [("personalization", True)],
    ),
    # Five more with analytics consent: with Ada, six people visit each week.
    (
        "eve@example.com",
        "+44 161 496 0123",
        ("3 Deansgate", "Manchester", "M3 2BW", "GB"),
        [("analytics", True)],
    ),
    (
        "finn@example.com",
        "+353 1 555 0134",
        ("8 Grafton Street", "Dublin", "D02 X285", "IE"),
        [("analytics", True)],
    ),
    (
        "gita@example.com",
        "+31 20 555 0145",
        ("Damrak 12", "Amsterdam", "1012 LG", "NL"),
        [("analytics", True), ("marketing.email", True)],
    ),
    (
        "hugo@example.com",
        "+34 91 555 0156",
        ("Calle Mayor 4", "Madrid", "28013", "ES"),
        [("analytics", True)],
    ),
    (
        "ines@example.com",
        "+351 21 555 0167",
        ("Rua Augusta 20", "Lisbon", "1100-053", "PT"),
        [("analytics", True)],
    ),
]

SUPPORT_CUSTOMER = "ben@example.com"
"""The demo customer with an open support case (customer care may read their contact data)."""
SUPPORT_CASE = ("Where is my order?", "My order has not arrived yet. Can you check, please?")

VISITORS = [email for email, _, _, consents in _CUSTOMERS if ("analytics", True) in consents]
"""The demo customers with analytics visits."""
VISIT_WEEKS = 4
VISIT_PAGES = ("/", "/products/rings")
_DEVICE = {"browser": "Firefox", "os": "Windows", "device_type": "desktop", "language": "en-GB"}


async def seed_demo(*, services: Services) -> list[str]:
    """Idempotent: existing demo accounts are left as they are. Returns lines to print."""
    lines = [f"Demo password for every demo account: {DEMO_PASSWORD}", "Customers:"]
    for email, phone, (line1, city, postal, country), consents in _CUSTOMERS:
        if not await Customer.exists(email=email):
            registration = validate_registration(
                email=email,
                password=DEMO_PASSWORD,
                phone=phone,
                line1=line1,
                line2=None,
                city=city,
                postal_code=postal,
                country=country,
                consents=consents,
            )
            await register_customer(
                services=services, registration=registration, meta=RequestMeta(None, "seed-demo")
            )
            # Demo accounts start verified: drop their verification token and mail.
            await Customer.filter(email=email).update(email_verified_at=services.clock.now())
            await EmailToken.filter(customer__email=email).delete()
            await OutboxMessage.filter(recipient=email, kind="verify_email").delete()
        lines.append(f"  {email}")
    lines.append("Employees (staffLogin):")
    for role in Role:
        email = f"{role.value.replace('_', '.')}@staff.example.com"
        if not await Employee.exists(email=email):
            try:
                await create_employee(
                    services=services,
                    email=email,
                    name=f"Demo {role.value}",
                    roles=[role.value],
                    password=DEMO_PASSWORD,
                )
            except InputInvalid as exc:  # pragma: no cover - the demo data is valid
                raise RuntimeError(exc.problems) from exc
        lines.append(f"  {email:40} role {role.value}")
    await _seed_support_case(services=services)
    lines.append(f"Open support case: {SUPPORT_CUSTOMER}")
    visitors = await _seed_visits(services=services)
    lines.append(f"Analytics visits, last {VISIT_WEEKS} weeks: {visitors} customers")
    lines.append("Processors:")
    lines += await _seed_processors(services=services)
    lines.append("Rights requests:")
    lines.append("  " + await seed_corrected_phone(services=services))
    lines.append(
        "Publish a policy version (legal): a material change takes effect "
        f"{services.settings.policy_notice_days} days ahead at the earliest, e.g. "
        f'effectiveAt: "{publication_date(services)}"'
    )
    return lines


def publication_date(services: Services) -> str:
    """An `effectiveAt` that a material `publishPolicy` accepts today: midnight UTC the day
    after the notice period ends."""
    days = services.settings.policy_notice_days + 1
    day = (services.clock.now().astimezone(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat().replace("+00:00", "Z")


async def _seed_support_case(*, services: Services) -> None:
    """One open case, unless the demo customer already has a case (open or closed)."""
    customer = await Customer.get(email=SUPPORT_CUSTOMER)
    if not await SupportCase.exists(customer_id=customer.id):
        subject, message = SUPPORT_CASE
        await open_case(
            services=services, customer_id=customer.id, subject=subject, message=message
        )


async def _seed_visits(*, services: Services) -> int:
    """Each visiting customer views the demo pages once a week for the last weeks (only
    customers without visits yet); returns how many customers have visits."""
    now = services.clock.now()
    customers = await Customer.filter(email__in=VISITORS)
    ids = [c.id for c in customers]
    seen = await VisitEvent.filter(customer_id__in=ids).values_list("customer_id", flat=True)
    visited = {str(i) for i in seen}
    events = [
        VisitEvent(
            customer_id=customer.id,
            purpose=PurposeKey.ANALYTICS,
            at=now - timedelta(days=7 * week, minutes=5 * n),
            page=page,
            action="view",
            ip_truncated=truncate_ip("203.0.113.7"),
            **_DEVICE,
        )
        for customer in customers
        if str(customer.id) not in visited
        for week in range(VISIT_WEEKS)
        for n, page in enumerate(VISIT_PAGES)
    ]
    await VisitEvent.bulk_create(events)
    return len(customers)


# Names no documented `createProcessor` example uses (the examples create "Mailer EU").
_PROCESSORS = [
    ("Northwind Mail", "IE", ["marketing.email"], ["contact.email"]),
    ("Parcel Express", "DE", ["service"], ["contact.address", "contact.phone"]),
    ("FraudShield", "US", ["security"], ["device.ip", "device.browser", "behavior.browsing"]),
    ("Relay Couriers", "FR", ["service"], ["contact.phone"]),
]


async def _seed_processors(*, services: Services) -> list[str]:
    """Four service providers for shareWithProcessor, created by the demo legal employee."""
    legal = await Employee.get(email="legal@staff.example.com")
    now = services.clock.now()
    lines = []
    for name, country, purposes, categories in _PROCESSORS:
        if not await Processor.exists(name=name):
            draft = ProcessorDraft(
                name=name,
                contact=f"privacy@{name.lower().replace(' ', '')}.example",
                country=country,
                contract_reference=f"DPA-{name.split()[0].upper()}-1",
                purposes=purposes,
                categories=categories,
                active_from=now,
            )
            await create_processor(draft=draft, actor_id=legal.id, now=now)
        lines.append(f"  {name} ({country}): {', '.join(purposes)}")
    return lines
