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
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import statistics
import sys
from pathlib import Path

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
    sys.path.insert(0, str(REPO / "src"))
    from siliconsim.hardware.catalog import load_chip

    chip = load_chip(chip_id)
    hbm = [t for t in chip.memory if t.kind == "hbm"][-1]
    return {"chip": chip_id, "bf16_flop_per_s": chip.dense_flop_per_s["bf16"], "hbm_bytes_per_s": hbm.bandwidth_bytes_per_s}


def graph_time_s(torch, fn, inner: int = 20, repeats: int = 7) -> list[float]:
    """Seconds per call: ``inner`` calls captured in one CUDA graph, replayed ``repeats`` times."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(inner):
            fn()
    g.replay()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b) * 1e-3 / inner)
    return out


def routing(torch, tokens: int, experts: int, top_k: int):
    """Token-expert rows sorted by expert, and the per-expert row counts, of random top-k routing."""
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
            ts = graph_time_s(torch, fn)
            t = statistics.median(ts)
            res[name] = {"s": t, "min_s": min(ts), "max_s": max(ts), "n": len(ts),
                         "frac_hbm_peak": weight_bytes / t / pk["hbm_bytes_per_s"],
                         "frac_bf16_peak": flop / t / pk["bf16_flop_per_s"], "roofline_frac": ideal_s / t}
        except Exception as exc:  # noqa: BLE001 - record why a kernel is unavailable and go on
            res[name] = {"error": repr(exc)[:300]}
    del w_up, w_down, x, out
    torch.cuda.empty_cache()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--chip", default="h100-sxm", help="catalog id of the GPU under test (sets the reference peaks)")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args(argv)
    doc: dict = {"script": "scripts/gpu_moe_bench.py", "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                 "platform": platform.platform(), "peaks": peaks(args.chip), "points": []}
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
        for model_id in args.models.split(","):
            shp = expert_shape(model_id)
            for tokens in TOKENS:
                p = {**shp, **bench_shape(torch, shp, doc["peaks"], tokens)}
                doc["points"].append(p)
                g, lp = p["grouped_mm"], p["mm_loop"]
                print(f"{model_id:16s} T={tokens:6d} touched {p['touched_experts']:3d}  grouped "
                      f"{g.get('s', float('nan')) * 1e6:9.1f} us roof {g.get('roofline_frac', float('nan')):.2f}  "
                      f"loop {lp.get('s', float('nan')) * 1e6:9.1f} us roof {lp.get('roofline_frac', float('nan')):.2f}",
                      flush=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
