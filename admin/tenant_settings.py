"""Per-tenant settings: what a tenant admin may tune, validated, with the platform's
defaults and bounds. Pure.

Bounds are safety rails, not preferences:
- `tooOldS` may not exceed 7 days: the vote stage keeps dedup entries for 7 days plus
  margin (settings.dedup_ttl_s), and a vote accepted after its entry expired could
  be counted twice.
- `lateAfterS` may not exceed `tooOldS` (the skew policy refuses that too).
- The rate budget is per caller per gateway process; its bounds keep one tenant from
  configuring itself out of the gateway's overload protection.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.clock_skew import SkewPolicy

DAY_S = 24 * 3600


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    future_tolerance_s: int = Field(120, alias="futureToleranceS", ge=0, le=3600)
    late_after_s: int = Field(15 * 60, alias="lateAfterS", ge=0, le=7 * DAY_S)
    too_old_s: int = Field(7 * DAY_S, alias="tooOldS", ge=3600, le=7 * DAY_S)
    rate_capacity: int = Field(60, alias="rateCapacity", ge=1, le=600)
    rate_refill_per_s: float = Field(20.0, alias="rateRefillPerS", gt=0, le=200)
    # For the presence and alert issues: kept, validated and published now so the
    # agents read them from the same topic when they arrive.
    presence_weights: dict[str, float] = Field(
        default_factory=lambda: {"wifi": 0.5, "ble": 0.3, "desk": 0.2},
        alias="presenceWeights",
        max_length=16,
    )
    alert_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"dissatisfiedPct": 30.0}, alias="alertThresholds", max_length=16
    )

    @model_validator(mode="after")
    def _coherent(self) -> TenantSettings:
        if self.late_after_s > self.too_old_s:
            raise ValueError("lateAfterS must not exceed tooOldS")
        for name, weight in self.presence_weights.items():
            if not 0 <= weight <= 1 or not 0 < len(name) <= 32:
                raise ValueError("presenceWeights: names of 1-32 chars, weights in [0, 1]")
        for name, value in self.alert_thresholds.items():
            if not 0 <= value <= 100 or not 0 < len(name) <= 32:
                raise ValueError("alertThresholds: names of 1-32 chars, values in [0, 100]")
        return self

    def skew_policy(self) -> SkewPolicy:
        return SkewPolicy(
            future_tolerance=timedelta(seconds=self.future_tolerance_s),
            too_old=timedelta(seconds=self.too_old_s),
            late_after=timedelta(seconds=self.late_after_s),
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


DEFAULT_SETTINGS = TenantSettings.model_validate({})


def parse_settings(document: object) -> TenantSettings:
    """Validate a settings document (camelCase keys); raises ValueError with the reason."""
    if not isinstance(document, dict):
        raise ValueError("settings must be a JSON object")
    try:
        return TenantSettings.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ValueError(f"{where}: {first['msg']}") from None
