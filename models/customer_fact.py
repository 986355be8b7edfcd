from tortoise import fields
from tortoise.models import Model


class CustomerFact(Model):
    """The facts a staff read's guards decide on, per customer, kept by triggers.

    Whether a support case is open (`open_case`), whether a rights request is running
    (`fulfilling_request`), and the purposes the customer's current consent grants, joined
    by commas (`purposes`, NULL for none): what a staff page reads for each customer, as one
    row found by its key. Kept by triggers on `support_case`, `rights_request` and
    `consent_current` (migration 0022), so every writer is covered, whatever its path: any
    change to a customer's rows there recomputes their row. A customer of whom no fact holds
    has no row. Nothing in the code writes this table."""

    customer_id = fields.UUIDField(primary_key=True)
    open_case = fields.BooleanField()
    fulfilling_request = fields.BooleanField()
    purposes = fields.TextField(null=True)

    class Meta:
        table = "customer_fact"
