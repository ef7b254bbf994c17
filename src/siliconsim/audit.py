"""Audit a chip's headline claims and a model's use of its resources.

- ``headline_claims``: each vendor figure next to the figure derived from the microarchitecture
  (WSE: PEs x SIMD lanes x 2 x clock for FLOP/s, PEs x 24 B x clock for SRAM bandwidth, PEs x
  48 KiB for SRAM, PEs x per-core power) or, for GPUs, the dense rate behind a sparse headline.
- ``decode_utilisation``: at the predicted single-stream speed (and at a measured one if given),
  the fraction of each resource a decode token uses: weight bytes x tok/s against the
  weight-holding tier's bandwidth, FLOP x tok/s against dense peak, hidden-state bytes against
  the system I/O or scale-up link.
- ``compare_decode``: two systems side by side, per-token time split into compute, memory,
  network and overhead (the memory wall on HBM, mesh latency on the wafer).
- ``physical_bound_tok_s``: best single-stream speed at 100% of the relevant bandwidth and
  dense peak with zero latency, per family; rows above it need speculation, lower precision or
  more chips than stated.
"""

from __future__ import annotations

from typing import Any

from siliconsim.hardware.spec import Chip
from siliconsim.inference import Estimate, Scenario, estimate
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.families import get_family
from siliconsim.plans import plan_deployment

NAN = float("nan")
SINGLE_STREAM = Scenario(1, 1000, 500)  # the ~1k-token prompt of Artificial Analysis API measurements


def _claim(claim: str, unit: str, vendor: float | None, derived: float | None, formula: str,
           basis: str = "") -> dict[str, Any]:
    ratio = vendor / derived if vendor and derived else NAN
    return {"claim": claim, "unit": unit, "vendor": vendor if vendor is not None else NAN,
            "derived": derived if derived is not None else NAN, "vendor_over_derived": ratio,
            "derivation": formula, "vendor_basis": basis}


def _basis(chip: Chip, key: str) -> str:
    s = chip.provenance.get(key)
    return s.basis if s else ""


def headline_claims(chip: Chip) -> list[dict[str, Any]]:
    """Vendor headline figures beside what the microarchitecture (or the dense rate) gives."""
    rows = []
    m = chip.microarch
    mesh = {"pe_count", "simd_fp16_lanes", "clock_hz"} <= set(m)
    for dt, headline in ({} if mesh else chip.headline_flop_per_s).items():
        dense = chip.dense_flop_per_s.get(dt)
        rows.append(_claim(f"peak {dt} FLOP/s (headline vs dense)", "FLOP/s", headline, dense,
                           f"catalog dense {dt} rate ({_basis(chip, f'compute.dense.{dt}')})",
                           _basis(chip, f"compute.headline.{dt}")))
    if mesh:
        pes, clk = m["pe_count"], m["clock_hz"]
        head = chip.headline_flop_per_s.get("fp16", chip.headline_flop_per_s.get("bf16"))
        rows.append(_claim("peak fp16 FLOP/s", "FLOP/s", head, pes * m["simd_fp16_lanes"] * 2 * clk,
                           f"{pes:,.0f} PEs x {m['simd_fp16_lanes']:g} FMAC x 2 x {clk / 1e9:g} GHz",
                           _basis(chip, "compute.headline.fp16")))
        sram = chip.tier("sram")
        if "sram_bytes_per_cycle" in m and sram:
            rows.append(_claim("memory bandwidth", "B/s", sram.bandwidth_bytes_per_s,
                               pes * m["sram_bytes_per_cycle"] * clk,
                               f"{pes:,.0f} PEs x {m['sram_bytes_per_cycle']:g} B/cycle x {clk / 1e9:g} GHz",
                               _basis(chip, f"memory.{sram.name}.bandwidth")))
        if "sram_per_pe_bytes" in m and sram:
            rows.append(_claim("on-chip SRAM", "B", sram.capacity_bytes, pes * m["sram_per_pe_bytes"],
                               f"{pes:,.0f} PEs x {m['sram_per_pe_bytes'] / 1024:g} KiB",
                               _basis(chip, f"memory.{sram.name}.capacity")))
        if {"fabric_x", "fabric_y"} <= set(m):
            fx, fy = m["fabric_x"], m["fabric_y"]
            rows.append(_claim("cores", "PEs", pes, fx * fy, f"SDK-visible fabric {fx:g} x {fy:g}",
                               _basis(chip, "microarch.pe_count")))
        if "pe_power_w" in m:
            rows.append(_claim("power", "W", chip.tdp_w, pes * m["pe_power_w"],
                               f"{pes:,.0f} PEs x {m['pe_power_w'] * 1e3:g} mW peak per core", _basis(chip, "power.tdp")))
    return rows


def _interconnect(est: Estimate, model: ModelSpec, chip: Chip) -> tuple[float, float, str]:
    """(bytes per token per chip on the inter-chip path, that path's bandwidth per chip, name)."""
    dep = est.deployment
    assert dep is not None
    par, hidden = dep.par, model.d_model * 2.0
    if chip.family == "wafer":
        return par.pp * hidden / par.chips, chip.microarch.get("io_bandwidth_bytes_per_s", NAN), "system I/O"
    link = chip.system.scale_up
    tp_bytes = 2 * model.n_layers * 2 * (par.tp - 1) / par.tp * hidden if par.tp > 1 else 0.0
    return tp_bytes + (hidden if par.pp > 1 else 0.0), link.bandwidth_bytes_per_s, link.name


def decode_utilisation(model: ModelSpec, chip: Chip, *, chips: int | None = None, dtype: str | None = None,
                       tok_s: float | None = None) -> dict[str, Any]:
    """Fraction of each resource one decode stream uses at the predicted (and a measured) speed."""
    est = estimate(model, chip, SINGLE_STREAM, chips=chips, dtype=dtype)
    if not est.feasible:
        return {"feasible": False, "reason": est.plan.reason, "rows": []}
    dep = est.deployment
    assert dep is not None
    n, dt = dep.chips, dep.dtype
    pred = est.output_tok_s_per_user
    tier = chip.main_memory
    read = model.decode_read_bytes(dt)
    flop = model.flop_per_token(SINGLE_STREAM.input_tokens + SINGLE_STREAM.output_tokens / 2)
    net_bytes, net_bw, net_name = _interconnect(est, model, chip)
    resources = [
        (f"weight reads vs {tier.kind.upper()} bandwidth", "B/s", read, n * tier.bandwidth_bytes_per_s),
        ("FLOP/s vs dense peak", "FLOP/s", flop, n * chip.peak_flop_per_s(dt)),
        (f"hidden-state traffic vs {net_name}", "B/s", net_bytes * n, n * net_bw),
    ]
    rows = []
    for name, unit, per_token, capacity in resources:
        row = {"resource": name, "unit": unit, "capacity": capacity, "per_token": per_token,
               "used_at_predicted": per_token * pred, "fraction_at_predicted": per_token * pred / capacity}
        if tok_s:
            row.update(used_at_measured=per_token * tok_s, fraction_at_measured=per_token * tok_s / capacity)
        rows.append(row)
    bound, why = physical_bound_tok_s(model, chip, n, dt)
    return {"feasible": True, "model": model.id, "hardware": chip.id, "deployment": dep.describe(), "chips": n,
            "predicted_tok_s": pred, "measured_tok_s": tok_s if tok_s else NAN, "breakdown_s": est.breakdown(),
            "physical_bound_tok_s": bound, "physical_bound_reason": why, "rows": rows}


def compare_decode(model: ModelSpec, chips: list[Chip], *, dtype: str | None = None) -> list[dict[str, Any]]:
    """Per-token decode time split by cause on each system (smallest deployment, batch 1)."""
    out = []
    for chip in chips:
        est = estimate(model, chip, SINGLE_STREAM, dtype=dtype)
        row: dict[str, Any] = {"hardware": chip.id, "feasible": est.feasible, "reason": est.plan.reason}
        if est.feasible:
            b = est.breakdown()
            total = sum(b.values())
            row.update(deployment=est.deployment.describe(), chips=est.chips,  # type: ignore[union-attr]
                       output_tok_s_per_user=est.output_tok_s_per_user, tpot_s=est.tpot_s, breakdown_s=b,
                       shares={k.removesuffix("_s"): v / total for k, v in b.items()},
                       dominant=max(b, key=b.__getitem__).removesuffix("_s"))
        out.append(row)
    return out


def physical_bound_tok_s(model: ModelSpec, chip: Chip, chips: int | None, dtype: str | None = None) -> tuple[float, str]:
    """Best single-stream tok/s: 100% of the weight-holding memory's bandwidth on every chip and of
    dense peak, zero latency. ``chips`` None means the smallest deployment that fits."""
    dtype = dtype or model.native_dtype
    if chips is None:
        plan = plan_deployment(model, chip, dtype=dtype)
        if not plan.feasible:
            return NAN, plan.reason
        chips = plan.deployment.chips  # type: ignore[union-attr]
    family = get_family(chip.family)
    if family is not None and hasattr(family, "physical_bound_tok_s"):
        return family.physical_bound_tok_s(model, chip, chips, dtype)
    read = model.decode_read_bytes(dtype)
    bw = chips * chip.bandwidth_bytes_per_s
    by_bw = bw / read
    by_flop = chips * chip.peak_flop_per_s(dtype) / model.flop_per_token(0.0)
    if by_bw <= by_flop:
        return by_bw, (f"{chip.main_memory.kind.upper()} bandwidth: {chips} x {bw / chips / 1e12:.3g} TB/s over "
                       f"{read / 1e9:.3g} GB of weights read per token")
    return by_flop, f"dense compute: {chips} x {chip.peak_flop_per_s(dtype) / 1e12:.3g} TFLOP/s"
