"""`siliconsim curve`: output tokens/s per chip against tokens/s per user over a concurrency sweep."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


from siliconsim.cli.args import add_format, add_what_if, fraction, hardware_list, positive_int
from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.inference import Scenario, estimate
from siliconsim.models.catalog import load_model
from siliconsim.models.spec import ModelSpec
from siliconsim.perf.step import Parallel
from siliconsim.plans import Deployment, default_kv_dtype, fit_layout, plan_deployment
from siliconsim.report.render import fmt, fmt_short, json_document, print_rich, table, to_csv, write_text
from siliconsim.serving.closed_loop import ClosedLoopPoint, closed_loop_point
from siliconsim.serving.disagg import DisaggPoint, disaggregated_point, plan_pools
from siliconsim.serving.engines import DATA as ENGINE_DATA
from siliconsim.serving.engines import EngineSettings, engine_point, engine_settings, load_engines
from siliconsim.serving.speculative_loop import speculative_deployment
from siliconsim.validation.errorbars import interval
from siliconsim.validation.speculation import speculation_for, techniques

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DTYPES = ("bf16", "fp16", "fp8", "fp4", "int8", "int4")
ENGINES = tuple(sorted({s.engine for _, s in load_engines(ENGINE_DATA / "engines.toml")}))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="throughput per chip against interactivity over a concurrency sweep",
                       description="For each system: N requests in flight on one replica (closed loop), each a prefill "
                                   "of --input-tokens then --output-tokens decode steps; prints and draws output "
                                   "tokens/s per chip against output tokens/s per user (1/TPOT), the axes of the "
                                   "InferenceX benchmark, with the validation error band.")
    p.add_argument("--model", "-m", required=True, metavar="ID|PATH", help="model id or path to a HF config.json")
    p.add_argument("--hardware", "-H", required=True, nargs="+", metavar="ID|FILE",
                   help="one or more hardware ids or chip TOML files")
    add_what_if(p)
    p.add_argument("--chips", type=positive_int, metavar="N", help="chips per replica (default: smallest feasible)")
    p.add_argument("--dtype", choices=DTYPES, help="weight precision (default: the model's native type)")
    p.add_argument("--input-tokens", type=positive_int, default=1024, metavar="N", help="prompt length (default 1024)")
    p.add_argument("--output-tokens", type=positive_int, default=1024, metavar="N",
                   help="generated length (default 1024)")
    p.add_argument("--concurrency", type=_concurrency, default=DEFAULT_CONCURRENCY, metavar="N,N,...",
                   help="requests in flight, comma-separated (default 1,2,4,...,256)")
    p.add_argument("--prefill-chips", type=positive_int, metavar="N",
                   help="disaggregated serving: N chips of prefill replicas (with --decode-chips; the layout that "
                        "prefills fastest); tok/s per chip counts both pools")
    p.add_argument("--decode-chips", type=positive_int, metavar="M",
                   help="disaggregated serving: M chips of decode replicas (the smallest layout that fits, "
                        "or --chips per replica)")
    p.add_argument("--speculative", choices=sorted(techniques()), metavar="TECH",
                   help="speculative decoding with a technique's sourced defaults (validation/data/speculation.toml): "
                        + ", ".join(sorted(techniques())))
    p.add_argument("--draft-tokens", type=positive_int, metavar="K",
                   help="drafted tokens verified per step (default: the technique's; its per-token acceptance is "
                        "kept, an extrapolation beyond its sourced draft length: see docs/serving-modes.md)")
    p.add_argument("--acceptance", type=fraction, metavar="A",
                   help="per-token acceptance rate instead of the technique's (with --speculative)")
    add_format(p)
    p.add_argument("--tp", type=positive_int, metavar="N",
                   help="published layout: tensor-parallel size of a replica (its chips); default: the planner's")
    p.add_argument("--ep", type=positive_int, metavar="N", help="with --tp: expert-parallel ranks of an MoE model")
    p.add_argument("--dp-attention", action="store_true",
                   help="with --tp: data-parallel attention (each of the --tp chips attends its own requests)")
    p.add_argument("--engine", choices=ENGINES, metavar="ENGINE",
                   help="run as the engine was launched in InferenceX (serving/data/engines.toml: batch cap, token "
                        "budget, memory fraction, KV reservation, scheduler holds); needs --tp: " + ", ".join(ENGINES))
    p.add_argument("--plot", metavar="FILE.png", help="also draw the curves")


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not vals or min(vals) < 1 or max(vals) > 100_000:
        raise argparse.ArgumentTypeError(f"expected concurrencies between 1 and 100000, got {text!r}")
    return tuple(sorted(set(vals)))


@dataclass(frozen=True)
class Serving:
    """How each system serves in a curve: one replica, or disaggregated pools; optional speculation."""

    chips: int | None = None  # chips per (decode) replica
    dtype: str | None = None
    prefill_chips: int | None = None
    decode_chips: int | None = None
    speculative: str | None = None
    draft_tokens: int | None = None
    acceptance: float | None = None
    tp: int | None = None  # published layout of one replica
    ep: int | None = None
    dp_attention: bool = False
    engine: str | None = None  # launch settings of serving/data/engines.toml

    def check(self) -> None:
        if (self.prefill_chips is None) != (self.decode_chips is None):
            raise InputError("--prefill-chips and --decode-chips go together (disaggregated serving)")
        for name, v in (("--draft-tokens", self.draft_tokens), ("--acceptance", self.acceptance)):
            if v is not None and self.speculative is None:
                raise InputError(f"{name} needs --speculative TECH")
        for name, v in (("--ep", self.ep), ("--dp-attention", self.dp_attention or None), ("--engine", self.engine)):
            if v is not None and self.tp is None:
                raise InputError(f"{name} needs --tp N (the published layout)")
        if self.tp is not None and self.chips is not None and self.chips != self.tp:
            raise InputError(f"--chips {self.chips} and --tp {self.tp}: a replica of --tp N has N chips")
        if self.engine is not None and (self.prefill_chips is not None or self.speculative is not None):
            raise InputError("--engine runs one replica as launched: not with --prefill-chips/--decode-chips or "
                             "--speculative")


Point = Callable[[int], ClosedLoopPoint]


def _speculating(dep: Deployment, how: Serving, context: float) -> Deployment | str:
    if how.speculative is None:
        return dep
    spec, what = speculation_for(how.speculative, dep.model)
    if spec is None:
        return what
    spec = replace(spec, draft_len=how.draft_tokens or spec.draft_len,
                   acceptance=spec.acceptance if how.acceptance is None else how.acceptance)
    return speculative_deployment(dep, spec, context)


def _system(model: ModelSpec, chip: Chip, how: Serving, i: int, o: int) -> tuple[str, int, Point] | str:
    """(layout, chips in all, concurrency -> point) of one system, or why it cannot serve."""
    dtype = how.dtype or model.native_dtype
    if how.prefill_chips is not None and how.decode_chips is not None:
        per = plan_deployment(model, chip, chips=how.chips, dtype=dtype, context_tokens=i + o) if how.chips else None
        if per is not None and not per.feasible:
            return per.reason
        pools = plan_pools(model, chip, how.prefill_chips, how.decode_chips, dtype=dtype,
                           kv_dtype=default_kv_dtype(dtype), input_tokens=i, output_tokens=o,
                           decode_par=per.deployment.par if per is not None else None)  # type: ignore[union-attr]
        if isinstance(pools, str):
            return pools
        decode = _speculating(pools.decode, how, i + o)
        if isinstance(decode, str):
            return decode
        pools = replace(pools, decode=decode)
        return pools.describe(), pools.chips, lambda n: disaggregated_point(pools, n, i, o)
    if how.engine is not None:
        return _launched(model, chip, how, dtype, i, o)
    if how.tp is not None:
        dep = fit_layout(model, chip, _par(how), dtype, default_kv_dtype(dtype), i + o)
    else:
        est = estimate(model, chip, Scenario(1, i, o), chips=how.chips, dtype=how.dtype)
        dep = est.plan.reason if est.deployment is None else est.deployment
    dep = dep if isinstance(dep, str) else _speculating(dep, how, i + o)
    if isinstance(dep, str):
        return dep
    return dep.describe(), dep.par.chips, lambda n: closed_loop_point(dep, n, i, o)


def _par(how: Serving) -> Parallel:
    return Parallel(tp=how.tp or 1, ep=how.ep or 1, attn_dp=how.dp_attention)


def _launched(model: ModelSpec, chip: Chip, how: Serving, dtype: str, i: int, o: int) -> tuple[str, int, Point] | str:
    """One replica on the published layout as ``how.engine`` was launched: each concurrency takes the
    settings entry that matches it (an entry may start at a concurrency), with that entry's memory
    fraction; the prompt and output lengths are the sweep's nominal ones."""
    par = _par(how)

    def settings_at(n: int) -> EngineSettings | None:
        return engine_settings(chip.id, how.engine, dtype, par.tp, par.ep, par.attn_dp, i, o, n)  # type: ignore[arg-type]

    deps: dict[str, Deployment | str] = {}

    def deployment(settings: EngineSettings) -> Deployment | str:
        if settings.name not in deps:
            deps[settings.name] = fit_layout(model, chip, par, dtype, default_kv_dtype(dtype), i + o,
                                             memory_fraction=settings.memory_fraction,
                                             memory_fraction_of=settings.memory_fraction_of)
        return deps[settings.name]

    def point(n: int) -> ClosedLoopPoint:
        settings = settings_at(n)
        dep = deployment(settings) if settings is not None else "no settings"
        if isinstance(dep, str):
            nan = float("nan")
            return ClosedLoopPoint(n, 0.0, nan, nan, nan, float(o))
        return engine_point(dep, settings, n, i, o)  # type: ignore[arg-type]

    probe = settings_at(1) or settings_at(1 << 30)
    if probe is None:
        raise InputError(f"--engine {how.engine}: no published launch settings for {chip.id} {dtype} "
                         f"{par.describe()} at {i}/{o} tokens in serving/data/engines.toml")
    dep = deployment(probe)
    if isinstance(dep, str):
        return dep
    return f"{dep.describe()}, {how.engine} as launched ({probe.describe(par.attn_dp)})", par.chips, point


def curve_records(model_ref: str, hardware: list[Chip], concurrency: tuple[int, ...], input_tokens: int,
                  output_tokens: int, chips: int | None = None, dtype: str | None = None,
                  how: Serving | None = None) -> list[dict[str, Any]]:
    """One record per system and concurrency (SI-named keys); infeasible systems carry a reason."""
    how = how or Serving(chips, dtype)
    how.check()
    model = load_model(model_ref)
    out: list[dict[str, Any]] = []
    for chip in hardware:
        hw = chip.id
        system = _system(model, chip, how, input_tokens, output_tokens)
        if isinstance(system, str):
            out.append({"hardware": hw, "feasible": False, "reason": system})
            continue
        layout, n_chips, point = system
        bars = {k: interval(chip.id, chip.family, model.id, m, closed_loop=True) for k, m in
                (("output_tok_s_per_user", "output_tok_s_per_user"), ("output_tok_s_per_chip", "aggregate_output_tok_s"))}
        for n in concurrency:
            pt = point(n)
            values = {"output_tok_s_per_user": 1.0 / pt.tpot_s, "output_tok_s_per_chip": pt.output_tok_s / n_chips}
            why = "" if pt.feasible else (pt.reason if isinstance(pt, DisaggPoint) else "the KV cache holds no request")
            rec: dict[str, Any] = {"hardware": hw, "model": model.id, "chips": n_chips, "layout": layout,
                                   "concurrency": n, "in_service": pt.in_service, "feasible": pt.feasible,
                                   "reason": why, "ttft_s": pt.ttft_s, "tpot_s": pt.tpot_s}
            for key, iv in bars.items():
                low, high = iv.bounds(values[key])
                rec[key] = values[key]
                rec[f"{key}_range"] = {"low": low, "high": high, "basis": iv.basis}
            out.append(rec)
    return out


def _rows(recs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in recs:
        if "concurrency" not in r:
            rows.append([r["hardware"], "–", "–", "–", "–", f"infeasible: {r['reason']}"])
            continue
        rng = lambda k: f"{fmt(r[k])} ({fmt_short(r[k + '_range']['low'])}–{fmt_short(r[k + '_range']['high'])})"  # noqa: E731
        rows.append([r["hardware"], str(r["concurrency"]), rng("output_tok_s_per_user"), rng("output_tok_s_per_chip"),
                     fmt(r["ttft_s"] * 1e3), fmt(r["tpot_s"] * 1e3)] if r["feasible"] else
                    [r["hardware"], str(r["concurrency"]), "–", "–", "–", r["reason"]])
    return rows


def _layouts(recs: list[dict[str, Any]]) -> str:
    seen = dict.fromkeys(f"{r['hardware']}: {r['layout']}" for r in recs if "layout" in r)
    return "; layouts: " + "; ".join(seen) if seen else ""


def _mode_note(how: Serving) -> str:
    note = ""
    if how.engine is not None:
        note += (f"; {how.engine} as launched in InferenceX (serving/data/engines.toml, matched on hardware, precision, "
                 "layout, lengths and concurrency; lengths are taken as the sweep's nominal ones)")
    if how.prefill_chips is not None:
        note += ("; disaggregated (serving/disagg.py): tok/s per chip counts both pools, TTFT includes the "
                 "prefill queue, the KV transfer and the first decode step")
    if how.speculative is not None:
        note += (f"; {how.speculative} (serving/speculative_loop.py): each decode step verifies the drafts, "
                 "acceptance from validation/data/speculation.toml; the ranges come from rows without speculation")
    return note


def run(args: argparse.Namespace) -> int:
    how = Serving(args.chips, args.dtype, args.prefill_chips, args.decode_chips, args.speculative, args.draft_tokens,
                  args.acceptance, args.tp, args.ep, args.dp_attention, args.engine)
    recs = curve_records(args.model, hardware_list(args), args.concurrency, args.input_tokens, args.output_tokens,
                         how=how)
    if not any(r.get("feasible") for r in recs):
        raise InputError("no system can serve the model at any of the concurrencies: "
                         + "; ".join(f"{r['hardware']}: {r['reason']}" for r in recs if r.get("reason")))
    if args.format == "json":
        write_text(json_document({"input_tokens": args.input_tokens, "output_tokens": args.output_tokens,
                                  "results": recs}), args.output)
    elif args.format == "csv":
        write_text(to_csv(recs), args.output)
    else:
        title = f"{recs[0].get('model', args.model)} · {args.input_tokens} in / {args.output_tokens} out · closed-loop concurrency"
        cap = ("closed form of serving/closed_loop.py (the one `validate` scores on the InferenceX sweeps): tok/s/user "
               "= 1/TPOT; tok/s per chip = the replica's output tok/s / its chips; TTFT includes waiting for a slot "
               "beyond the engine's batch or KV capacity; ranges: 10th-90th percentile of the leave-one-group-out "
               "validation error (`siliconsim validate`)" + _mode_note(how) + _layouts(recs))
        print_rich(table(title, ["system", "N", "tok/s per user", "tok/s per chip", "TTFT ms", "TPOT ms"], _rows(recs),
                         caption=cap, justify_right=(1, 2, 3, 4, 5)), path=args.output)
    if args.plot:
        from siliconsim.report.plots import interactivity_curves

        interactivity_curves(recs, f"{args.model} · {args.input_tokens} in / {args.output_tokens} out", args.plot)
    return 0
