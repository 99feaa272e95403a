"""Budget: a monthly AWS cost budget over the resources tagged with this stack, alerting the
alerts topic when actual or forecast spend crosses each threshold. (Tag `mlops:stack` must be
activated as a cost allocation tag in the billing console for the filter to see spend.)"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child
from core.errors import raise_problems

STACK_TAG = "mlops:stack"


@dataclass(frozen=True)
class StackBudgetArgs:
    budget_name: str
    """Name of the budget."""
    stack: str
    """Value of the `mlops:stack` tag the budget filters on."""
    monthly_usd: float
    """Monthly limit in US dollars."""
    alert_topic_arn: pulumi.Input[str]
    """SNS topic the alerts go to."""
    alert_percents: tuple[int, ...] = (50, 80, 100)
    """Percentages of the limit that alert (actual and forecast spend)."""


def validate_stack_budget_args(args: StackBudgetArgs) -> None:
    problems = []
    if args.monthly_usd <= 0:
        problems.append(bad("monthly_usd", args.monthly_usd, "positive", "set budget.monthlyUsd"))
    if not args.alert_percents:
        problems.append(
            bad("alert_percents", args.alert_percents, "non-empty", "set budget.alertPercents")
        )
    for p in args.alert_percents:
        if not 1 <= p <= 200:
            problems.append(
                bad("alert_percents", p, "between 1 and 200", "set budget.alertPercents")
            )
    raise_problems("StackBudget", problems)


class StackBudget(pulumi.ComponentResource):
    """Monthly cost budget on the stack's tag with SNS alerts."""

    budget_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: StackBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_stack_budget_args(args)
        super().__init__("mlops:aws:StackBudget", name, None, opts)
        notifications = [
            {
                "comparison_operator": "GREATER_THAN",
                "notification_type": kind,
                "threshold": p,
                "threshold_type": "PERCENTAGE",
                "subscriber_sns_topic_arns": [args.alert_topic_arn],
            }
            for p in sorted(set(args.alert_percents))
            for kind in ("ACTUAL", "FORECASTED")
        ]
        budget = aws.budgets.Budget(
            f"{name}-budget",
            name=args.budget_name,
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.monthly_usd:.2f}",
            limit_unit="USD",
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:{STACK_TAG}${args.stack}"]}],
            notifications=notifications,
            opts=child(self),
        )
        self.budget_name = budget.name
        self.register_outputs({"budgetName": self.budget_name})
