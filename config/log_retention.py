"""CloudWatch Logs retention: the periods, in days, that CloudWatch accepts (PutRetentionPolicy API
reference, retentionInDays). components/log_retention.py gives each its CDK name."""

from __future__ import annotations

LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545),
    *(731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
