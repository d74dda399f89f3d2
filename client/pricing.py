"""On-demand hourly prices, for cost per million inferences when --hourly-price is not given.

The prices live with the instance sizes (config/hardware.py): Linux on-demand list prices in
us-east-1, as AWS published them for each type, not re-checked against the live price list from
here. Spot and other regions differ: pass --hourly-price for the price you pay.
"""

from __future__ import annotations

from config.hardware import INSTANCE_SIZES, ON_DEMAND_PRICES_AS_OF, ON_DEMAND_PRICES_REGION

PRICE_TABLE_DATE = ON_DEMAND_PRICES_AS_OF
PRICE_TABLE_REGION = ON_DEMAND_PRICES_REGION
ON_DEMAND_USD_PER_HOUR: dict[str, float] = {name: size.on_demand_usd_per_hour for name, size in INSTANCE_SIZES.items()}
