"""The schema's history, one file a change (Tortoise migrations)."""

from tortoise.migrations import operations as ops


class StateOnly(ops.TortoiseOperation):
    """An operation's change to Tortoise's record of the models, without its SQL: for a
    table a migration builds in SQL (a key of two columns, which Tortoise cannot declare)."""

    def __init__(self, operation):
        self.operation = operation

    def describe(self):
        return f"{self.operation.describe()} (record only)"

    def state_forward(self, app_label, state):
        self.operation.state_forward(app_label, state)
