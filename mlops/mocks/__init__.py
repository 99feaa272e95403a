"""Answers the offline plan's Pulumi mocks give per platform: ids, ARNs, names and the
provider functions' results, in each platform's own format. `mlops.plan` uses them; the
constants are the fake subscription and tenant every Azure id carries."""

MOCK_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
MOCK_TENANT = "11111111-1111-1111-1111-111111111111"
