#!/usr/bin/env python3
"""Measure grouped expert (MoE) matmuls on a real GPU and write them as JSON.

    python3 scripts/gpu_moe_bench.py --out moe.json --chip h200

What it measures: the expert MLP of one MoE layer (gate_up grouped GEMM, SiLU x mul, down grouped
GEMM) in bf16, for the expert shapes of four catalog models, at 1 to 16,384 tokens per step with
random top-k routing. The expert weights of one layer sit in HBM (one GPU holds them all: EP1/TP1).
Each point is timed as a CUDA-graph replay (CUDA events, median of repeats, warm-up first), with
``torch._grouped_mm`` (the grouped GEMM PyTorch ships for Hopper) and, for comparison, a loop of one
``torch.mm`` per touched expert captured in the same kind of graph.

What it reports per point: the bytes of the touched experts' weights and the FLOP, the achieved
fraction of the chip's datasheet HBM bandwidth and dense bf16 peak (from the repo's catalog), and
the roofline fraction ``max(bytes / HBM peak, FLOP / peak) / t``. Divided by the dense kernels'
fractions measured by ``scripts/gpu_microbench.py`` on the same chip, that is the ``moe``
efficiency key of ``perf/hbm.py`` (the grouped expert GEMMs' efficiency relative to dense ones).

Without CUDA (or torch) it writes a JSON that says so and exits 0.

    python3 scripts/gpu_moe_bench.py --post RAW.json --dense-memory 0.813 --dense-compute 0.691 --out FILE.json

post-processes a raw run into the repo's measured-data form (``provenance``, ``summary``, ``data``): the
``moe`` ratio of each point against the dense efficiencies measured on the same card.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_microbench as mb  # noqa: E402 - the sibling script: catalog peaks and the CUDA-graph timer

REPO = Path(__file__).resolve().parents[1]
MODELS = ("mixtral-8x7b", "qwen3-235b-a22b", "deepseek-r1", "gpt-oss-120b")
TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384)


def expert_shape(model_id: str) -> dict:
    """(experts, top-k, d_model, expert d_ff) of a catalog model's MoE layers."""
    sys.path.insert(0, str(REPO / "src"))
    from siliconsim.models.catalog import load_model

    m = load_model(model_id)
    g = next(g for g in m.groups if g.moe)
    return {"model": model_id, "experts": g.n_experts, "top_k": g.experts_per_token, "d_model": m.d_model,
            "d_ff": g.d_ff}


def peaks(chip_id: str) -> dict:
    """The chip's dense bf16 peak and HBM bandwidth, read from the catalog as gpu_microbench reads them."""
    mb.set_peaks(chip_id)
    return {"chip": chip_id, "bf16_flop_per_s": mb.PEAK["bf16"], "hbm_bytes_per_s": mb.PEAK["hbm_Bps"]}


def routing(torch, tokens: int, experts: int, top_k: int):
    """Rows per expert of random top-k routing (the rows of x are taken as already sorted by expert)."""
    idx = torch.randn(tokens, experts, device="cuda").topk(top_k, dim=-1).indices.flatten()
    counts = torch.bincount(idx, minlength=experts)
    return counts


def bench_shape(torch, shp: dict, pk: dict, tokens: int) -> dict:
    e, k, d, ff = shp["experts"], shp["top_k"], shp["d_model"], shp["d_ff"]
    counts = routing(torch, tokens, e, k)
    rows = tokens * k
    touched = int((counts > 0).sum())
    # nn.Linear layout (out x in, K contiguous), used transposed as in x @ W.T and torchtitan's grouped_mm call
    w_up = (torch.randn(e, 2 * ff, d, device="cuda", dtype=torch.bfloat16) * 0.02).transpose(-2, -1)
    w_down = (torch.randn(e, d, ff, device="cuda", dtype=torch.bfloat16) * 0.02).transpose(-2, -1)
    x = torch.randn(rows, d, device="cuda", dtype=torch.bfloat16)
    offs = torch.cumsum(counts, 0).to(torch.int32)

    def grouped():
        h = torch._grouped_mm(x, w_up, offs=offs)
        a = torch.nn.functional.silu(h[:, :ff]) * h[:, ff:]
        return torch._grouped_mm(a, w_down, offs=offs)

    cl = counts.tolist()
    starts = [sum(cl[:i]) for i in range(e)]
    live = [(i, starts[i], cl[i]) for i in range(e) if cl[i] > 0]
    out = torch.empty(rows, d, device="cuda", dtype=torch.bfloat16)

    def looped():
        for i, s0, n in live:
            h = torch.mm(x[s0:s0 + n], w_up[i])
            a = torch.nn.functional.silu(h[:, :ff]) * h[:, ff:]
            torch.mm(a, w_down[i], out=out[s0:s0 + n])

    weight_bytes = touched * 3 * d * ff * 2
    flop = 2.0 * rows * 3 * d * ff
    ideal_s = max(weight_bytes / pk["hbm_bytes_per_s"], flop / pk["bf16_flop_per_s"])
    res = {"tokens": tokens, "rows": rows, "touched_experts": touched, "weight_bytes": weight_bytes, "flop": flop,
           "max_rows_per_expert": max(cl)}
    for name, fn in (("grouped_mm", grouped), ("mm_loop", looped)):
        try:
            ts = mb.Timer(torch).graph(lambda _i: fn(), inner=20)[1]
            t = statistics.median(ts)
            res[name] = {"s": t, "min_s": min(ts), "max_s": max(ts), "n": len(ts),
                         "frac_hbm_peak": weight_bytes / t / pk["hbm_bytes_per_s"],
                         "frac_bf16_peak": flop / t / pk["bf16_flop_per_s"], "roofline_frac": ideal_s / t}
        except Exception as exc:  # noqa: BLE001 - record why a kernel is unavailable and go on
            res[name] = {"error": repr(exc)[:300]}
    del w_up, w_down, x, out
    torch.cuda.empty_cache()
    return res


def summarize(raw_path: Path, dense_memory: float, dense_compute: float) -> dict:
    """The moe ratio per point: time at the dense efficiencies over the measured time (better kernel)."""
    raw = raw_path.read_bytes()
    d = json.loads(raw)
    bw, peak = d["peaks"]["hbm_bytes_per_s"], d["peaks"]["bf16_flop_per_s"]
    by_model: dict[str, list[float]] = {}
    grouped = []
    for p in d["points"]:
        t_dense = max(p["weight_bytes"] / (dense_memory * bw), p["flop"] / (dense_compute * peak))
        p["moe_ratio_best"] = round(t_dense / min(p["grouped_mm"]["s"], p["mm_loop"]["s"]), 3)
        p["moe_ratio_grouped_mm"] = round(t_dense / p["grouped_mm"]["s"], 3)
        by_model.setdefault(p["model"], []).append(p["moe_ratio_best"])
        grouped.append(p["moe_ratio_grouped_mm"])
    every = [r for v in by_model.values() for r in v]
    return {
        "provenance": {"device": d.get("device"), "torch": d.get("torch"), "date_utc": d["date_utc"],
                       "command": f"python3 scripts/gpu_moe_bench.py --out $OUT/{raw_path.name} --chip {d['peaks']['chip']}",
                       "raw_output_sha256": hashlib.sha256(raw).hexdigest(), "platform": d["platform"],
                       "method": "expert MLP of one MoE layer (gate_up grouped GEMM, SiLU x mul, down grouped GEMM), "
                                 "bf16, all experts of one layer on one GPU, random top-k routing, weights in nn.Linear "
                                 "layout used transposed; CUDA graph of 20 calls replayed 7 times, CUDA events, median; "
                                 "torch._grouped_mm and a loop of torch.mm per touched expert"},
        "summary": {"dense_reference": {"memory": dense_memory, "compute": dense_compute,
                                        "source": "the same card's GEMV weight-streaming and bf16 GEMM plateau medians "
                                                  "(scripts/gpu_microbench.py)"},
                    "definition": "moe ratio = max(touched expert weight bytes / (memory x HBM peak), FLOP / (compute x "
                                  "bf16 peak)) / measured time, the better of the two kernels per point: the moe key of "
                                  "perf/hbm.py",
                    "moe_ratio_median": round(statistics.median(every), 3), "moe_ratio_min": min(every),
                    "moe_ratio_max": max(every),
                    "moe_ratio_median_by_model": {m: round(statistics.median(v), 3) for m, v in by_model.items()},
                    "moe_ratio_median_grouped_mm_only": round(statistics.median(grouped), 3)},
        "data": d}


def write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--chip", default="h100-sxm", help="catalog id of the GPU under test (sets the reference peaks)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--post", type=Path, help="post-process this raw run instead of measuring")
    ap.add_argument("--dense-memory", type=float, default=0.82, help="with --post: the card's dense memory efficiency")
    ap.add_argument("--dense-compute", type=float, default=0.70, help="with --post: the card's dense compute efficiency")
    args = ap.parse_args(argv)
    try:
        if args.post:
            write_json(args.out, summarize(args.post, args.dense_memory, args.dense_compute))
            return 0
        chip_peaks = peaks(args.chip)
        shapes = [expert_shape(m) for m in args.models.split(",")]
    except (OSError, ValueError, KeyError) as exc:  # unknown id, unreadable or malformed file: one line, exit 2
        print(f"gpu_moe_bench: error: {exc}", file=sys.stderr)
        return 2
    doc: dict = {"script": "scripts/gpu_moe_bench.py", "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                 "platform": platform.platform(), "peaks": chip_peaks, "points": []}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        torch = None
        doc["skipped"] = f"torch unavailable: {exc!r}"
    if torch is not None and not torch.cuda.is_available():
        doc["skipped"] = "no CUDA device"
    if "skipped" not in doc:
        doc.update(torch=torch.__version__, device=torch.cuda.get_device_name(0))
        torch.manual_seed(0)
        for shp in shapes:
            model_id = shp["model"]
            for tokens in TOKENS:
                p = {**shp, **bench_shape(torch, shp, doc["peaks"], tokens)}
                doc["points"].append(p)
                g, lp = p["grouped_mm"], p["mm_loop"]
                print(f"{model_id:16s} T={tokens:6d} touched {p['touched_experts']:3d}  grouped "
                      f"{g.get('s', float('nan')) * 1e6:9.1f} us roof {g.get('roofline_frac', float('nan')):.2f}  "
                      f"loop {lp.get('s', float('nan')) * 1e6:9.1f} us roof {lp.get('roofline_frac', float('nan')):.2f}",
                      flush=True)
    write_json(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
