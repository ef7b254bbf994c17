"""Predict the rows of a training suite through ``siliconsim.training`` and score them.

Each row is predicted on its published layout: the dimensions its ``parallelism`` text states
are pinned and the layout search fills in the rest (the report says which). A published run
demonstrably fit in memory, so when the memory model disagrees the row is still timed on the
closest layout and the disagreement is recorded as an assumption. Calibration passes
per-family efficiency factors and may freeze the layouts chosen at the priors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from siliconsim.errors import InputError, SiliconsimError
from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.ops import model_flop_per_token
from siliconsim.training import plan_training
from siliconsim.training.estimate import TrainEstimate
from siliconsim.training.job import Layout, TrainingJob
from siliconsim.training.params import efficiency, family_of, framework
from siliconsim.training.search import Pins
from siliconsim.training.step import step_breakdown
from siliconsim.training.wafer import plan_wafer_training, software_line
from siliconsim.validation.runner import Scored
from siliconsim.validation.training_benchmarks import Recipe, benchmark_for, recipe_for, time_to_train_s
from siliconsim.validation.training_suite import TrainingCase, published_pins

Factors = Mapping[str, Mapping[str, float]]  # training family -> {efficiency key: multiplier}
LORA_RANK = 16  # MLPerf llama2_70b_lora reference: lora_r 16 (mlcommons/training llama2_70b_lora configs)
DEFAULT_SEQ_LEN = 2048  # MaxText base.yml max_target_length when a row does not state one
DEFAULT_BATCH_PER_CHIP = 4  # assumed sequences per chip when a row states no global batch


@dataclass(frozen=True)
class TrainingRowResult(Scored):
    case: TrainingCase
    predicted: float
    reason: str = ""
    layout: str = ""
    pinned: str = ""  # which layout dimensions came from the row
    assumption: str = ""
    family: str = ""
    estimate: TrainEstimate | None = None

    @property
    def covered(self) -> bool:
        return math.isfinite(self.predicted)



def _model(ref: str, models_dir: Path | None) -> tuple[ModelSpec, int]:
    base, lora = (ref[:-len("+lora")], LORA_RANK) if ref.endswith("+lora") else (ref, 0)
    if models_dir is not None and (models_dir / f"{base}.json").is_file():
        return load_model(str(models_dir / f"{base}.json")), lora
    return load_model(base), lora


def _pins(case: TrainingCase) -> tuple[Pins, int, str]:
    pins, slice_chips = published_pins(case)
    sizes = [pins.tp, pins.pp, pins.dp, pins.cp]
    note = ""
    if all(s is not None for s in sizes) and math.prod(sizes) != case.chips:  # type: ignore[arg-type]
        note = f"published TP x PP x DP x CP = {math.prod(sizes)} != {case.chips} chips: DP searched"  # type: ignore[arg-type]
        pins = replace(pins, dp=None)
    return pins, slice_chips, note


def _job(case: TrainingCase, model: ModelSpec, lora: int, recipe: Recipe | None) -> tuple[TrainingJob, str]:
    chip = load_chip(case.hardware)
    bench = benchmark_for(case) if case.metric == "time_to_train_min" else None
    seq = case.seq_len or (recipe.seq_len if recipe else bench.seq_len if bench else DEFAULT_SEQ_LEN)
    assumed = []
    if not case.seq_len and not recipe and not bench:
        assumed.append(f"sequence length {seq}")
    gb = case.global_batch or (recipe.per_chip_batch * case.chips if recipe else 0)
    if not gb:
        gb = DEFAULT_BATCH_PER_CHIP * case.chips
        assumed.append(f"global batch {gb} ({DEFAULT_BATCH_PER_CHIP} per chip)")
    job = TrainingJob(model=model, chip=chip, chips=case.chips, seq_len=seq, global_batch=gb, dtype=case.dtype,
                      lora_rank=lora, framework=case.framework)
    return job, ("assumed " + ", ".join(assumed)) if assumed else ""


def _divisible_batch(job: TrainingJob, pins: Pins) -> tuple[TrainingJob, str]:
    """Round a published global batch to a multiple of the published DP size (a run's batch is
    whole per rank; the suite may quote a rounded figure, e.g. OPT's "2M tokens")."""
    dp = pins.dp
    if dp is None and None not in (pins.tp, pins.pp, pins.cp):
        inner = pins.tp * pins.pp * pins.cp  # type: ignore[operator]
        dp = job.chips // inner if job.chips % inner == 0 else None
    if not dp or job.global_batch % dp == 0:
        return job, ""
    gb = max(dp, round(job.global_batch / dp) * dp)
    return replace(job, global_batch=gb), f"global batch {job.global_batch} rounded to {gb} (a multiple of DP {dp})"


def _value(case: TrainingCase, est: TrainEstimate) -> float:
    m = case.metric
    if m == "tokens_per_s":
        return est.tokens_per_s
    if m == "step_time_s":
        return est.step_time_s
    if m == "mfu_pct":  # under the row's framework's own convention for the attention term
        fw = framework(case.framework)
        return 100.0 * est.mfu * model_flop_per_token(est.job.model, est.job.seq_len, fw.mfu_attention_factor) / est.model_flop_per_token
    if m == "hfu_pct":
        return 100.0 * est.hfu
    if m == "model_tflops_per_chip":
        return est.model_flop_per_token * est.tokens_per_s / est.job.chips / 1e12
    if m == "time_to_train_min":
        return time_to_train_s(benchmark_for(case), est.tokens_per_s, est.job.global_batch) / 60.0
    raise InputError(f"{case.id}: metric {m!r} has no prediction")


def predict_training_case(case: TrainingCase, factors: Factors | None = None, *, models_dir: Path | None = None,
                          layout: Layout | None = None, software: Mapping[str, float] | None = None,
                          uncalibrated: bool = False) -> TrainingRowResult:
    """Predict one row. ``factors`` multiply a chip family's efficiencies and ``software`` replaces
    a framework's software factor (both for calibration trials); ``layout`` freezes the layout
    (calibration re-times the layouts chosen at the priors); otherwise the published dimensions
    are pinned and the rest searched. ``uncalibrated`` starts from the priors (calibration)."""
    try:
        model, lora = _model(case.model, models_dir)
        recipe = recipe_for(framework(case.framework).id, case.hardware, case.model)
        job, assumed = _job(case, model, lora, recipe)
        if job.chip.family == "wafer":
            return _predict_wafer(case, job, assumed, software)
        fam = family_of(job.chip.id) if job.chip.family == "hbm" else job.chip.family
        if job.chip.family != "hbm":
            raise InputError(f"training on {job.chip.id} ({job.chip.family} family) is not modelled yet")
        eff = efficiency(job.chip.id, use_calibration=not uncalibrated).scaled((factors or {}).get(fam, {}))
        fw = framework(case.framework)
        if uncalibrated or (software and fw.id in software):
            fw = replace(fw, software=(software or {}).get(fw.id, 1.0))
        pins, slice_chips, note = _pins(case)
        if recipe is not None:  # the published script states the whole layout
            pins = replace(pins, tp=recipe.tp, pp=1, cp=1, ep=1, zero=3, recompute=recipe.recompute,
                           microbatch=recipe.per_chip_batch * recipe.tp)  # no gradient accumulation
            note = "; ".join(x for x in (note, f"layout and batch from the recipe ({recipe.source})") if x)
        job, batch_note = _divisible_batch(replace(job, slice_chips=slice_chips), pins)
        note = "; ".join(n for n in (note, batch_note) if n)
        if layout is not None:
            pins = Pins(**layout.as_dict())  # type: ignore[arg-type]
        result = plan_training(job, pins, framework_ref=fw, eff=eff, keep=1)
    except SiliconsimError as exc:
        return TrainingRowResult(case, math.nan, reason=str(exc).splitlines()[0])
    est = result.best
    notes = [n for n in (assumed, note) if n]
    if est is None:  # the run fit in reality: time the closest layout and say so
        closest = result.infeasible[0]
        notes.append(f"memory model disagrees with the published run ({closest.reason})")
        est = replace(closest, breakdown=step_breakdown(job, closest.layout, eff, fw), reason="")
    try:
        value = _value(case, est)
    except SiliconsimError as exc:
        return TrainingRowResult(case, math.nan, reason=str(exc), family=fam)
    return TrainingRowResult(case, value, layout=est.layout.describe(), pinned=_pinned_text(pins),
                             assumption="; ".join(notes), family=fam, estimate=est)


def _predict_wafer(case: TrainingCase, job: TrainingJob, assumed: str,
                   software: Mapping[str, float] | None) -> TrainingRowResult:
    """A wafer-scale row: weight streaming over ``case.chips`` systems at the row's global batch,
    under the software line its framework text names. ``software`` may replace the line's mesh
    fraction under the key ``chip.line`` (``scripts/fit_wafer_training.py``)."""
    line = software_line(job.chip, job.framework)
    frac = (software or {}).get(f"{job.chip.id}.{line.line}")
    result = plan_wafer_training(job, fraction=frac)
    est = result.best
    if est is None:
        return TrainingRowResult(case, math.nan, reason=result.infeasible[0].reason, family="wafer")
    return TrainingRowResult(case, _value(case, est), layout=est.layout.describe(), pinned="dp (every system)",
                             assumption=assumed, family="wafer", estimate=est)


def _pinned_text(pins: Pins) -> str:
    d = {k: v for k, v in pins.__dict__.items() if v is not None}
    return " ".join(f"{k}={v}" for k, v in d.items()) or "none (searched)"


def run_training_suite(cases: Sequence[TrainingCase], factors: Factors | None = None, *,
                       models_dir: Path | None = None, layouts: Mapping[str, Layout] | None = None,
                       progress: Callable[[int, int], None] | None = None) -> list[TrainingRowResult]:
    out = []
    for i, case in enumerate(cases):
        out.append(predict_training_case(case, factors, models_dir=models_dir,
                                         layout=(layouts or {}).get(case.id)))
        if progress:
            progress(i + 1, len(cases))
    return out




def training_row_record(r: TrainingRowResult) -> dict[str, object]:
    """One row of the training part of ``siliconsim validate --format json``."""
    return {"id": r.case.id, "hardware": r.case.hardware, "chips": r.case.chips, "model": r.case.model,
            "framework": r.case.framework, "metric": r.case.metric, "predicted": r.predicted, "measured": r.case.value,
            "error_pct": r.error_pct, "status": "predicted" if r.covered else "not-predicted", "reason": r.reason,
            "layout": r.layout, "pinned": r.pinned, "assumption": r.assumption}


def summarize_training(results: Sequence[TrainingRowResult]) -> dict[str, object]:
    """Headline and breakdowns of a training-suite run (median and mean |error| over predicted rows)."""
    import statistics

    def stats(rows: list[TrainingRowResult]) -> dict[str, object]:
        ape = [abs(r.error_pct) for r in rows]
        return {"n": len(rows), "median_ape_pct": statistics.median(ape) if ape else None,
                "mean_ape_pct": statistics.fmean(ape) if ape else None,
                "median_error_pct": statistics.median(r.error_pct for r in rows) if rows else None}

    def by(key: Callable[[TrainingRowResult], str]) -> dict[str, object]:
        groups: dict[str, list[TrainingRowResult]] = {}
        for r in results:
            if r.covered:
                groups.setdefault(key(r), []).append(r)
        return {k: stats(v) for k, v in sorted(groups.items())}

    head = [r for r in results if r.covered]
    overall = stats(head)
    return {"rows": len(results), "predicted": len(head),
            "coverage_pct": 100.0 * len(head) / len(results) if results else 0.0,
            "median_ape_pct": overall["median_ape_pct"], "mean_ape_pct": overall["mean_ape_pct"],
            "median_error_pct": overall["median_error_pct"],
            "by_vendor": by(lambda r: r.case.vendor), "by_metric": by(lambda r: r.case.metric),
            "by_framework": by(lambda r: framework(r.case.framework).id), "by_hardware": by(lambda r: r.case.hardware),
            "not_predicted": [{"id": r.case.id, "reason": r.reason} for r in results if not r.covered],
            "assumptions": sorted({r.assumption for r in results if r.assumption})}
