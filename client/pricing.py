"""On-demand hourly prices, for cost per million inferences when --hourly-price is not given.

Linux on-demand list prices in us-east-1, USD per hour, as AWS published them for each type; the
table was written on 2026-11-25 and not re-checked against the live price list from here. Spot and
other regions differ: pass --hourly-price for the price you pay.
"""

from __future__ import annotations

PRICE_TABLE_DATE = "2026-11-25"
PRICE_TABLE_REGION = "us-east-1"

ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "inf1.xlarge": 0.228,
    "inf1.2xlarge": 0.362,
    "inf1.6xlarge": 1.180,
    "inf1.24xlarge": 4.721,
    "inf2.xlarge": 0.7582,
    "inf2.8xlarge": 1.9679,
    "inf2.24xlarge": 6.4906,
    "inf2.48xlarge": 12.9813,
}
