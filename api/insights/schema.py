"""`insights`: anonymised counts for marketing and analysts, no personal-data grant needed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from api.context import Info
from api.insights import service
from api.permissions import only
from authz.registry import Role

# registers the enums
strawberry.enum(service.Dimension, name="InsightDimension")
strawberry.enum(
    service.Metric,
    name="InsightMetric",
    description="What is counted, and by what it can be grouped (each also by WEEK). "
    "CUSTOMERS: accounts registered (erased ones not), by COUNTRY. CONSENTS: consent grants "
    "recorded (withdrawals not), by PURPOSE and COUNTRY (the customer's). VISITS: analytics "
    "visits, by PAGE, ACTION, BROWSER, OS, DEVICE_TYPE and LANGUAGE.",
)


@strawberry.type
class InsightGroup:
    keys: list[str] = strawberry.field(
        description='One value per groupBy dimension; "other" for the folded small groups.'
    )
    count: int


@strawberry.type(description="Counts over whole ISO weeks, small groups suppressed.")
class Insight:
    metric: service.Metric
    group_by: list[service.Dimension]
    start: date = strawberry.field(description="The Monday the counted weeks start on.")
    end: date = strawberry.field(description="The Monday after the last counted week.")
    k: int = strawberry.field(description="Minimum number of people in a group shown.")
    groups: list[InsightGroup]
    suppressed_groups: int


@strawberry.type
class InsightQuery:
    @strawberry.field(
        extensions=only(Role.MARKETING, Role.FRAUD_ANALYST),
        description="Counts of customers, consent grants or analytics visits grouped by one "
        "or two dimensions the metric supports (else VALIDATION), over the whole ISO weeks "
        "covering [from, to]. A group of fewer than k people in a week is folded into "
        '"other" (dropped when that is small too); ALL_SUPPRESSED when nothing is left to '
        "show.",
    )
    async def insights(
        self,
        info: Info,
        metric: service.Metric,
        group_by: list[service.Dimension],
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> Insight | None:
        k = info.context.services.settings.insights_min_group
        result = await service.counts(metric=metric, group_by=group_by, start=from_, end=to, k=k)
        info.context.audit_event(
            event="insights",
            operation="insights",
            reason=f"{metric.value} by {','.join(d.value for d in group_by)}",
        )
        return Insight(
            metric=metric,
            group_by=group_by,
            start=result.start,
            end=result.end,
            k=result.k,
            groups=[InsightGroup(keys=list(g.keys), count=g.count) for g in result.groups],
            suppressed_groups=result.suppressed_groups,
        )
