"""Budget: a monthly cost budget on the stack's resource group, alerting on actual and forecast
spend at each configured percentage, to the resource group's owners and contributors and the
stack's action group."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import consumption

from components.azure._common import check, raise_if

BUDGET_START = "2025-01-01T00:00:00Z"
"""First month of every budget (Azure requires the first day of a month, not in the future)."""


@dataclass(frozen=True)
class BudgetArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    resource_group_id: pulumi.Input[str]
    """Scope of the budget: the stack's resource group."""
    monthly_usd: float
    """Monthly spending limit in the billing currency (USD)."""
    alert_percents: tuple[int, ...] = (50, 80, 100)
    """Alert when actual or forecast spend crosses these percentages."""
    action_group_id: pulumi.Input[str] | None = None
    """Action group also notified; None: only the contact roles."""


def validate_budget_args(args: BudgetArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        args.monthly_usd > 0,
        "monthly_usd",
        args.monthly_usd,
        "above 0",
        "set budget.monthlyUsd in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        bool(args.alert_percents) and all(1 <= p <= 1000 for p in args.alert_percents),
        "alert_percents",
        args.alert_percents,
        "whole percentages from 1 to 1000",
        "set budget.alertPercents in Pulumi.<stack>.yaml",
    )
    check(
        problems,
        len(args.alert_percents) * 2 <= 10,
        "alert_percents",
        args.alert_percents,
        "at most 5 thresholds (Azure allows 10 notifications: actual + forecast each)",
        "drop some thresholds",
    )
    raise_if("Budget", problems)


class Budget(pulumi.ComponentResource):
    """Consumption budget on the resource group with actual and forecast alerts."""

    budget_name: pulumi.Output[str]

    def __init__(self, name: str, args: BudgetArgs, opts: ResourceOptions | None = None):
        validate_budget_args(args)
        super().__init__("mlops:azure:Budget", name, None, opts)
        groups = [args.action_group_id] if args.action_group_id is not None else None
        notifications = {
            f"{kind.lower()}-{p}": consumption.NotificationArgs(
                enabled=True,
                operator="GreaterThanOrEqualTo" if kind == "Actual" else "GreaterThan",
                threshold=p,
                threshold_type=kind,
                contact_emails=[],
                contact_roles=["Owner", "Contributor"],
                contact_groups=groups,
            )
            for p in sorted(set(args.alert_percents))
            for kind in ("Actual", "Forecasted")
        }
        budget = consumption.Budget(
            f"{name}-budget",
            budget_name=f"budget-{args.prefix}",
            scope=args.resource_group_id,
            amount=args.monthly_usd,
            category="Cost",
            time_grain="Monthly",
            time_period=consumption.BudgetTimePeriodArgs(start_date=BUDGET_START),
            notifications=notifications,
            opts=ResourceOptions(parent=self),
        )
        self.budget_name = budget.name
        self.register_outputs({"budgetName": budget.name})
