"""Demo data for `make run` (development only): a few customers, one employee per role."""

from __future__ import annotations

from api.customers.service import RequestMeta, register_customer, validate_registration
from api.errors import InputInvalid
from api.services import Services
from api.sharing.processors import ProcessorDraft, create_processor
from api.staff.service import create_employee
from authz.registry import Role
from models import Customer, EmailToken, Employee, OutboxMessage, Processor

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
]


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
    lines.append("Processors:")
    lines += await _seed_processors(services=services)
    return lines


_PROCESSORS = [
    ("Mailer EU", "IE", ["marketing.email"], ["contact.email"]),
    ("Parcel Express", "DE", ["service"], ["contact.address", "contact.phone"]),
    ("FraudShield", "US", ["security"], ["device.ip", "device.browser", "behavior.browsing"]),
]


async def _seed_processors(*, services: Services) -> list[str]:
    """Three service providers for shareWithProcessor, created by the demo legal employee."""
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
