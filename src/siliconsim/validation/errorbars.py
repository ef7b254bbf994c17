"""Error bars for any estimate, from the validation residuals of its family and metric.

``interval(chip_id, family, model_id, metric)`` returns multiplicative factors: the true value
is expected between ``estimate / high_factor`` and ``estimate / low_factor`` for ~80% of
cases (10th-90th percentile of the leave-one-group-out log error ``log(pred / measured)``).
``basis`` is ``validated`` when both the chip and the model have rows in the suite, else
``extrapolated`` (the family-wide spread is used and should be read as optimistic).
Data: ``data/residuals.toml``, written by ``siliconsim calibrate``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from siliconsim.hardware.catalog import read_toml
from siliconsim.validation.suite import DATA

RESIDUALS_FILE = DATA / "residuals.toml"
QUANTILES = (0.1, 0.9)
MIN_BUCKET = 5  # fewer residuals than this: use the family-wide bucket
# buckets of serving-sweep (closed-loop) rows carry their metric with this suffix: a loaded curve's
# error differs from a single batch's of the same metric
CLOSED_LOOP_SUFFIX = "@closed-loop"

# metric names the estimate/compare layers use, mapped onto the suite's metrics
METRIC_ALIASES = {"tpot_s": "tpot_mean_ms", "ttft_s": "ttft_ms", "output_tok_s_per_user": "output_tok_s_per_user",
                  "aggregate_output_tok_s": "aggregate_output_tok_s"}


@dataclass(frozen=True)
class Interval:
    """``measured ≈ estimate × [1/high_factor, 1/low_factor]``; factors from residual quantiles."""

    low_factor: float  # exp(10th percentile of log(pred/measured)); < 1 when we tend to under-predict
    high_factor: float  # exp(90th percentile)
    n: int  # residuals behind the interval (0: no data at all)
    basis: str  # "validated" | "extrapolated"

    def bounds(self, estimate: float) -> tuple[float, float]:
        """(low, high) range for the true value given a point ``estimate``."""
        return estimate / self.high_factor, estimate / self.low_factor


@functools.cache
def _residuals() -> dict[str, Any]:
    if not RESIDUALS_FILE.is_file():
        return {"meta": {"chips": [], "models": []}, "bucket": []}
    return read_toml(RESIDUALS_FILE)


def _bucket(family: str, metric: str) -> dict[str, Any] | None:
    for b in _residuals().get("bucket", []):
        if b["family"] == family and b["metric"] == metric and b["n"] >= MIN_BUCKET:
            return b
    return None


def interval(chip_id: str, family: str, model_id: str, metric: str, closed_loop: bool = False) -> Interval:
    """Error bar for an estimate of ``metric`` for ``model_id`` on ``chip_id`` (execution ``family``);
    ``closed_loop``: a point of a closed-loop concurrency sweep, from the sweeps' residuals where the
    family has them."""
    metric = METRIC_ALIASES.get(metric, metric)
    meta = _residuals()["meta"]
    validated = chip_id in meta.get("chips", []) and model_id in meta.get("models", [])
    b = ((_bucket(family, metric + CLOSED_LOOP_SUFFIX) if closed_loop else None) or _bucket(family, metric)
         or _bucket(family, "*") or _bucket("hbm", "*"))
    if b is None:
        return Interval(math.nan, math.nan, 0, "extrapolated")
    basis = "validated" if validated and b["family"] == family else "extrapolated"
    return Interval(math.exp(b["log_error_low"]), math.exp(b["log_error_high"]), int(b["n"]), basis)


def clear_cache() -> None:
    _residuals.cache_clear()
