#!/usr/bin/env python3
"""Measure a real GPU (an H100 or H200 SXM) and write calibration data as JSON.

    python3 scripts/gpu_microbench.py --out h200.json --chip h200 [--parts micro,e2e,lean]

Parts
  micro : HBM bandwidth (copy, read-only reduction, write), read bandwidth vs
          size (L2 effect), GEMM efficiency (bf16 matmul, fp8 _scaled_mm) on
          Llama-3.1-8B / 70B layer shapes, kernel-launch overhead eager vs graph.
  e2e   : randomly initialised Llama-3.1-8B (config from the repo) with
          transformers: prefill time at batch 1, decode step time eager and
          CUDA-graph replay over a static KV cache; a layer slice of
          Llama-3.1-70B at batch 1.

Method: CUDA events around the timed region, warm-up first, median of
repeats, random (never zero) data, buffers rotated so that the working set is
larger than the 50 MB L2 unless the point is to measure L2. Short kernels are
timed as CUDA-graph replays of many back-to-back launches (so host launch
gaps do not pollute GPU time) unless the point is to measure launch overhead.

Provenance: the numbers in src/siliconsim/calibration/data/measured/h100-sxm-2026-11-22.json
came from `--parts micro,e2e` of this script on a lent H100 SXM (see docs/calibration-h100.md).
src/siliconsim/calibration/data/measured/h200-sxm-2026-11-22.json came from two runs of
`--chip h200 --parts micro,e2e,lean` on a lent H200 SXM (see docs/calibration-h200.md). Those
H200 runs were the first on a GPU for the two parts added after the H100 lease ended: the
`hbm_copy_variant` block in bench_memory and the opt-in `lean` part (LeanLlama: a graph-captured
plain-PyTorch decode step that reads the KV cache once, meant to stand in for an engine's
attention at large batch x context). Neither ran on the H100.

Without CUDA (or without torch) the script writes a JSON that says so and
exits 0, so it can be imported and smoke-tested on a CPU-only machine.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LLAMA8B_JSON = REPO / "src" / "siliconsim" / "models" / "data" / "llama-3.1-8b.json"

# Reference peaks (dense) of the chip under test: main() replaces these H100 SXM5 values with the
# catalog's numbers for --chip, so every fraction in the JSON is against the tested chip's datasheet.
PEAK = {"chip": "h100-sxm", "bf16": 989.4e12, "fp8": 1978.9e12, "hbm_Bps": 3.35e12}


def set_peaks(chip_id: str) -> None:
    """Take the dense bf16/fp8 peaks and HBM bandwidth of ``chip_id`` from src/siliconsim/hardware/data."""
    sys.path.insert(0, str(REPO / "src"))
    from siliconsim.hardware.catalog import load_chip  # stdlib-only import path

    chip = load_chip(chip_id)
    PEAK.update(chip=chip_id, bf16=chip.dense_flop_per_s["bf16"], fp8=chip.dense_flop_per_s["fp8"],
                hbm_Bps=chip.main_memory.bandwidth_bytes_per_s)
ROTATE_BYTES = 200 * 1000 * 1000  # working set for "cold" measurements (> 4x L2)

# Linear-layer shapes (name, N=out_features, K=in_features), TP1.
GEMM_SHAPES = [
    ("llama3.1-8b.qkv", 6144, 4096),
    ("llama3.1-8b.gate_up", 28672, 4096),
    ("llama3.1-8b.down", 4096, 14336),
    ("llama3.1-70b.qkv", 10240, 8192),
    ("llama3.1-70b.gate_up", 57344, 8192),
    ("llama3.1-70b.down", 8192, 28672),
]
GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]

# Llama-3.1-70B config (public HF config values); not in the repo catalog yet.
LLAMA70B_CFG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 8192, "initializer_range": 0.02, "intermediate_size": 28672,
    "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_cache": True, "vocab_size": 128256,
}


def log(*a):
    print(*a, flush=True)


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"unavailable: {e!r}"


def git_commit() -> str | None:
    out = sh(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    return out if out and len(out) == 40 else None


class Recorder:
    """Accumulates entries and rewrites the JSON after every section."""

    def __init__(self, path: Path):
        self.path = path
        self.doc: dict = {"schema": "siliconsim.gpu_microbench/1", "entries": [], "errors": [],
                          "skipped": []}

    def add(self, **entry):
        self.doc["entries"].append(entry)

    def error(self, where: str, exc: BaseException):
        msg = f"{type(exc).__name__}: {exc}"
        log(f"!! {where}: {msg}")
        self.doc["errors"].append({"where": where, "error": msg[:2000],
                                   "traceback": traceback.format_exc()[-3000:]})

    def skip(self, what: str, why: str):
        self.doc["skipped"].append({"what": what, "why": why})

    def flush(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str))
        tmp.replace(self.path)


# ----------------------------------------------------------------------------- environment


def environment(torch) -> dict:
    env = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname_platform": platform.platform(),
        "python": sys.version.split()[0],
        "script": "scripts/gpu_microbench.py",
        "git_commit": git_commit(),
        "nvidia_smi_query": sh(["nvidia-smi",
                                "--query-gpu=name,power.limit,power.default_limit,power.max_limit,"
                                "clocks.max.sm,clocks.max.mem,memory.total,driver_version",
                                "--format=csv"]),
        "nvidia_smi_L": sh(["nvidia-smi", "-L"]),
    }
    if torch is None:
        return env
    env["torch"] = torch.__version__
    env["torch_cuda"] = torch.version.cuda
    env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    env["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["device_name"] = p.name
        env["sm_count"] = p.multi_processor_count
        env["total_memory_bytes"] = p.total_memory
        env["capability"] = f"{p.major}.{p.minor}"
        env["l2_bytes"] = getattr(p, "L2_cache_size", None)
    for mod in ("transformers", "triton"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            env[mod] = f"unavailable: {e!r}"
    return env


def gpu_state() -> str:
    return sh(["nvidia-smi", "--query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu,"
               "clocks_throttle_reasons.active", "--format=csv,noheader"])


# ----------------------------------------------------------------------------- timing helpers


class Timer:
    def __init__(self, torch):
        self.torch = torch

    def events(self, fn, repeats=10, warmup=3, inner=1):
        """Median seconds per fn() call, timing `inner` back-to-back calls per sample."""
        torch = self.torch
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            e0 = torch.cuda.Event(enable_timing=True)
            e1 = torch.cuda.Event(enable_timing=True)
            e0.record()
            for _ in range(inner):
                fn()
            e1.record()
            e1.synchronize()
            samples.append(e0.elapsed_time(e1) / 1e3 / inner)
        return statistics.median(samples), samples

    def graph(self, fn_i, inner, repeats=7, warmup=2):
        """Capture `inner` calls fn_i(i) in one CUDA graph; median seconds per call over replays."""
        torch = self.torch
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for i in range(warmup):
                fn_i(i)
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(inner):
                fn_i(i)
        g.replay()
        torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            e0 = torch.cuda.Event(enable_timing=True)
            e1 = torch.cuda.Event(enable_timing=True)
            e0.record()
            g.replay()
            e1.record()
            e1.synchronize()
            samples.append(e0.elapsed_time(e1) / 1e3 / inner)
        del g
        return statistics.median(samples), samples


def spread(samples):
    return {"min_s": min(samples), "max_s": max(samples), "n": len(samples)}


# ----------------------------------------------------------------------------- micro: memory


def bench_memory(torch, T: Timer, rec: Recorder):
    dev = "cuda"
    # Large copy: 2 GiB source -> 2 GiB destination (4 GiB moved per copy).
    for nbytes in (256 * 2**20, 1 * 2**30, 2 * 2**30):
        n = nbytes // 2
        src = torch.randn(n, device=dev, dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        t, s = T.graph(lambda i: dst.copy_(src), inner=10)
        moved = 2 * nbytes
        rec.add(what="hbm_copy_d2d", shape=[n], dtype="bf16", bytes_moved=moved,
                bytes_note="read + write", time_s=t, achieved_Bps=moved / t,
                frac_of_hbm_peak=moved / t / PEAK["hbm_Bps"], repeats=len(s), inner=10, **spread(s))
        log(f"copy {nbytes/2**30:5.2f} GiB: {t*1e3:8.3f} ms  {moved/t/1e12:6.3f} TB/s (r+w)")
        del src, dst
    torch.cuda.empty_cache()

    # Same 1 GiB -> 1 GiB copy through an elementwise kernel instead of cudaMemcpy(D2D).
    src = torch.randn(2**29, device=dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    for label, fn in (("copy_", lambda i: dst.copy_(src)),
                      ("mul_out", lambda i: torch.mul(src, 1.0, out=dst))):
        t, s = T.graph(fn, inner=10)
        moved = 2 * 2**30
        rec.add(what="hbm_copy_variant", op=label, shape=[src.numel()], dtype="bf16",
                bytes_moved=moved, bytes_note="read + write", time_s=t, achieved_Bps=moved / t,
                frac_of_hbm_peak=moved / t / PEAK["hbm_Bps"], repeats=len(s), inner=10, **spread(s))
        log(f"copy variant {label:8s} 1 GiB: {t*1e3:8.3f} ms  {moved/t/1e12:6.3f} TB/s (r+w)")
    del src, dst
    torch.cuda.empty_cache()

    # Read-only reductions over >= 2 GB, and a write-only fill.
    for nbytes in (2 * 2**30, 4 * 2**30):
        x = torch.randn(nbytes // 2, device=dev, dtype=torch.bfloat16)
        t, s = T.graph(lambda i: x.sum(), inner=10)
        rec.add(what="hbm_read_sum", shape=[x.numel()], dtype="bf16", bytes_moved=nbytes,
                bytes_note="read only", time_s=t, achieved_Bps=nbytes / t,
                frac_of_hbm_peak=nbytes / t / PEAK["hbm_Bps"], repeats=len(s), inner=10, **spread(s))
        log(f"sum  {nbytes/2**30:5.2f} GiB: {t*1e3:8.3f} ms  {nbytes/t/1e12:6.3f} TB/s (read)")
        t, s = T.graph(lambda i: x.fill_(1.5), inner=10)
        rec.add(what="hbm_write_fill", shape=[x.numel()], dtype="bf16", bytes_moved=nbytes,
                bytes_note="write only", time_s=t, achieved_Bps=nbytes / t,
                frac_of_hbm_peak=nbytes / t / PEAK["hbm_Bps"], repeats=len(s), inner=10, **spread(s))
        log(f"fill {nbytes/2**30:5.2f} GiB: {t*1e3:8.3f} ms  {nbytes/t/1e12:6.3f} TB/s (write)")
        del x
    torch.cuda.empty_cache()

    # fp32 read reduction (different reduction kernel) at 4 GiB.
    x = torch.randn(2**30, device=dev, dtype=torch.float32)
    t, s = T.graph(lambda i: x.sum(), inner=10)
    rec.add(what="hbm_read_sum", shape=[x.numel()], dtype="fp32", bytes_moved=4 * 2**30,
            bytes_note="read only", time_s=t, achieved_Bps=4 * 2**30 / t,
            frac_of_hbm_peak=4 * 2**30 / t / PEAK["hbm_Bps"], repeats=len(s), inner=10, **spread(s))
    log(f"sum fp32 4 GiB: {t*1e3:8.3f} ms  {4*2**30/t/1e12:6.3f} TB/s (read)")
    del x
    torch.cuda.empty_cache()

    # Read bandwidth vs size: hot (same buffer, L2 can hold it) vs cold (rotating buffers).
    size = 2**20
    while size <= 4 * 2**30:
        n = size // 2
        nbuf_cold = max(1, min(256, math.ceil(ROTATE_BYTES / size)))
        bufs = [torch.randn(n, device=dev, dtype=torch.bfloat16) for _ in range(nbuf_cold)]
        est = size / 2.5e12 + 3e-6
        inner = int(min(400, max(4, 0.01 / est)))
        for mode in ("hot", "cold"):
            if mode == "hot":
                fn = lambda i, b=bufs[0]: b.sum()  # noqa: E731
            else:
                if nbuf_cold == 1:
                    fn = lambda i, b=bufs[0]: b.sum()  # noqa: E731
                else:
                    fn = lambda i: bufs[i % nbuf_cold].sum()  # noqa: E731
            t, s = T.graph(fn, inner=inner)
            rec.add(what="read_bw_vs_size", mode=mode, size_bytes=size, dtype="bf16",
                    n_buffers=1 if mode == "hot" else nbuf_cold, time_s=t,
                    achieved_Bps=size / t, repeats=len(s), inner=inner,
                    note="CUDA-graph replay of back-to-back x.sum(); hot = same buffer every call",
                    **spread(s))
            log(f"read {mode:4s} {size/2**20:9.1f} MiB: {t*1e6:10.2f} us  {size/t/1e12:6.3f} TB/s")
        del bufs
        torch.cuda.empty_cache()
        size *= 4


# ----------------------------------------------------------------------------- micro: GEMM


def bench_gemm(torch, T: Timer, rec: Recorder, deadline: float, gemm_m=None):
    dev = "cuda"
    fp8 = getattr(torch, "float8_e4m3fn", None)
    fp8_state = {"ok": fp8 is not None, "pad16": False}
    one = torch.ones((), device=dev, dtype=torch.float32)

    def run_fp8(a, w, fast):
        return torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                use_fast_accum=fast)

    if fp8_state["ok"]:
        try:
            a = torch.randn(1, 4096, device=dev).to(fp8)
            w = torch.randn(6144, 4096, device=dev).to(fp8)
            try:
                run_fp8(a, w, False)
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                log(f"fp8 M=1 failed ({e!r}); padding M to 16")
                fp8_state["pad16"] = True
                a = torch.randn(16, 4096, device=dev).to(fp8)
                run_fp8(a, w, False)
                torch.cuda.synchronize()
        except Exception as e:  # noqa: BLE001
            rec.error("gemm.fp8.probe", e)
            fp8_state["ok"] = False

    shapes = list(GEMM_SHAPES) + [("square", 8192, 8192)]
    for name, N, K in shapes:
        ms = (gemm_m or GEMM_M) if name != "square" else [8192]
        for dtype in ("bf16", "fp8", "fp8_fastacc"):
            if dtype.startswith("fp8") and not fp8_state["ok"]:
                rec.skip(f"gemm {name} {dtype}", "float8 _scaled_mm unavailable")
                continue
            if time.time() > deadline:
                rec.skip(f"gemm {name} {dtype}", "time budget")
                continue
            el = 2 if dtype == "bf16" else 1
            wbytes = N * K * el
            nbuf = max(1, math.ceil(ROTATE_BYTES / wbytes))
            try:
                if dtype == "bf16":
                    ws = [torch.randn(N, K, device=dev, dtype=torch.bfloat16) for _ in range(nbuf)]
                else:
                    ws = [torch.randn(N, K, device=dev, dtype=torch.bfloat16).to(fp8) for _ in range(nbuf)]
                for M in ms:
                    if time.time() > deadline:
                        rec.skip(f"gemm {name} {dtype} M={M}", "time budget")
                        continue
                    Mr = max(M, 16) if (dtype != "bf16" and fp8_state["pad16"]) else M
                    a_bf = torch.randn(Mr, K, device=dev, dtype=torch.bfloat16)
                    a = a_bf if dtype == "bf16" else a_bf.to(fp8)
                    if dtype == "bf16":
                        fn = lambda i: torch.matmul(a, ws[i % nbuf].t())  # noqa: E731
                    else:
                        fast = dtype == "fp8_fastacc"
                        fn = lambda i, fast=fast: run_fp8(a, ws[i % nbuf], fast)  # noqa: E731
                    flops = 2.0 * M * N * K
                    peak = PEAK["bf16"] if dtype == "bf16" else PEAK["fp8"]
                    byts = wbytes + Mr * K * el + Mr * N * 2  # weights + A + bf16 output
                    est = max(flops / (0.7 * peak), byts / 2.8e12) + 4e-6
                    inner = int(min(200, max(3, 0.015 / est)))
                    t, s = T.graph(fn, inner=inner, repeats=7)
                    rec.add(what="gemm", name=name, M=M, M_run=Mr, N=N, K=K, dtype=dtype,
                            op="torch.matmul(x, W.T)" if dtype == "bf16" else
                            "torch._scaled_mm(x, W.T, per-tensor scale, out bf16)",
                            time_s=t, flops=flops, achieved_flops=flops / t,
                            frac_of_dense_peak=flops / t / peak, bytes=byts,
                            bytes_note="weights + activations in + bf16 out",
                            achieved_Bps=byts / t, frac_of_hbm_peak=byts / t / PEAK["hbm_Bps"],
                            weight_buffers_rotated=nbuf, repeats=len(s), inner=inner, **spread(s))
                    log(f"gemm {name:22s} {dtype:11s} M={M:6d}: {t*1e6:10.2f} us "
                        f"{flops/t/1e12:7.1f} TF ({flops/t/peak*100:5.1f}%)  {byts/t/1e12:5.2f} TB/s")
                    del a, a_bf
            except Exception as e:  # noqa: BLE001
                rec.error(f"gemm {name} {dtype}", e)
            finally:
                ws = None
                torch.cuda.empty_cache()
        rec.flush()
    rec.doc.setdefault("notes", {})["fp8_state"] = fp8_state
    rec.add(what="gpu_state_after_gemm", nvidia_smi=gpu_state())


# ----------------------------------------------------------------------------- micro: launch


def bench_launch(torch, T: Timer, rec: Recorder):
    dev = "cuda"
    x = torch.randn(1, device=dev)
    N = 5000
    for _ in range(200):
        x.add_(1e-6)
    torch.cuda.synchronize()
    samples_gpu, samples_host = [], []
    for _ in range(7):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        h0 = time.perf_counter()
        e0.record()
        for _ in range(N):
            x.add_(1e-6)
        e1.record()
        h1 = time.perf_counter()
        e1.synchronize()
        samples_gpu.append(e0.elapsed_time(e1) / 1e3 / N)
        samples_host.append((h1 - h0) / N)
    rec.add(what="launch_overhead", mode="eager_torch", kernel="x.add_(c) on 1 element",
            time_s=statistics.median(samples_gpu), host_issue_time_s=statistics.median(samples_host),
            repeats=7, inner=N, note="time_s = GPU time per launch when launched back-to-back from "
            "Python (bounded by host issue rate); host_issue_time_s = CPU time per launch call",
            **spread(samples_gpu))
    log(f"launch eager: gpu {statistics.median(samples_gpu)*1e6:.2f} us/launch, "
        f"host {statistics.median(samples_host)*1e6:.2f} us/launch")

    t, s = T.graph(lambda i: x.add_(1e-6), inner=N, repeats=7)
    rec.add(what="launch_overhead", mode="cuda_graph_replay", kernel="x.add_(c) on 1 element",
            time_s=t, repeats=len(s), inner=N,
            note="GPU time per kernel node when a graph of N tiny kernels is replayed", **spread(s))
    log(f"launch graph: {t*1e6:.2f} us/kernel")

    # Graph launch cost itself: replay a 1-kernel graph repeatedly.
    g = torch.cuda.CUDAGraph()
    s_ = torch.cuda.Stream()
    s_.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s_):
        x.add_(1e-6)
    torch.cuda.current_stream().wait_stream(s_)
    with torch.cuda.graph(g):
        x.add_(1e-6)
    t, s = T.events(lambda: g.replay(), repeats=7, warmup=50, inner=1000)
    rec.add(what="launch_overhead", mode="graph_launch_1node", time_s=t, repeats=len(s), inner=1000,
            note="per cudaGraphLaunch of a 1-kernel graph, back to back", **spread(s))
    log(f"graph launch (1 node): {t*1e6:.2f} us")

    # Round trip: launch + synchronize.
    rt = []
    for _ in range(200):
        h0 = time.perf_counter()
        x.add_(1e-6)
        torch.cuda.synchronize()
        rt.append(time.perf_counter() - h0)
    rt = rt[20:]
    rec.add(what="launch_overhead", mode="launch_plus_sync_roundtrip", time_s=statistics.median(rt),
            repeats=len(rt), note="host wall time of one tiny launch + cudaDeviceSynchronize",
            **spread(rt))
    log(f"launch+sync round trip: {statistics.median(rt)*1e6:.2f} us")


# ----------------------------------------------------------------------------- e2e: transformers


def kv_bytes_per_token(cfg: dict) -> int:
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    return cfg["num_hidden_layers"] * cfg["num_key_value_heads"] * hd * 2 * 2


def param_counts(cfg: dict) -> dict:
    h, i, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    hd = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    per_layer = h * (h + 2 * kv) + h * h + 3 * h * i + 2 * h
    emb = cfg["vocab_size"] * h
    lm_head = 0 if cfg.get("tie_word_embeddings") else cfg["vocab_size"] * h
    return {"per_layer": per_layer, "layers": per_layer * L, "embed": emb, "lm_head": lm_head,
            "total": per_layer * L + emb + lm_head + h}


def build_model(torch, cfg_dict: dict):
    import transformers
    from transformers import AutoModelForCausalLM, LlamaConfig

    d = {k: v for k, v in cfg_dict.items() if k not in ("transformers_version",)}
    cfg = LlamaConfig(**d)
    major = int(transformers.__version__.split(".")[0])
    kw = {"dtype": torch.bfloat16} if major >= 5 else {"torch_dtype": torch.bfloat16}
    kw["attn_implementation"] = "sdpa"
    t0 = time.time()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, **kw)
    model = model.to("cuda", torch.bfloat16).eval()
    torch.cuda.synchronize()
    log(f"built model ({sum(p.numel() for p in model.parameters())/1e9:.3f} B params) "
        f"in {time.time()-t0:.1f} s")
    return model, cfg


def make_static_cache(torch, cfg, batch: int, max_len: int):
    import inspect

    from transformers import StaticCache

    params = inspect.signature(StaticCache.__init__).parameters
    kw = {"config": cfg, "max_cache_len": max_len}
    if "max_batch_size" in params:
        kw["max_batch_size"] = batch
    elif "batch_size" in params:
        kw["batch_size"] = batch
    if "device" in params:
        kw["device"] = "cuda"
    if "dtype" in params:
        kw["dtype"] = torch.bfloat16
    cache = StaticCache(**kw)
    # Fill positions [0, ctx) with random K/V (ctx = max_len - 1; position max_len-1 is the new token).
    hd = cfg.hidden_size // cfg.num_attention_heads
    ctx = max_len - 1
    pos = torch.arange(ctx, device="cuda")
    for layer in range(cfg.num_hidden_layers):
        k = torch.randn(batch, cfg.num_key_value_heads, ctx, hd, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        cache.update(k, v, layer, {"cache_position": pos})  # 5.x ignores the dict
        del k, v
    return cache


def forward_kwargs(model):
    import inspect

    p = inspect.signature(model.forward).parameters
    if "logits_to_keep" in p:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in p:
        return {"num_logits_to_keep": 1}
    return {}


def count_kernels(torch, fn) -> int | None:
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        n = 0
        for ev in prof.events():
            dt = str(getattr(ev, "device_type", ""))
            if "CUDA" in dt and not str(ev.name).startswith(("cudaLaunch", "cuLaunch")):
                n += 1
        return n
    except Exception as e:  # noqa: BLE001
        log(f"kernel count failed: {e!r}")
        return None


def bench_prefill(torch, T, rec, model, cfg_d, label, lens, extra=None):
    fk = forward_kwargs(model)
    pc = param_counts(cfg_d)
    h, L = cfg_d["hidden_size"], cfg_d["num_hidden_layers"]
    for s_len in lens:
        try:
            ids = torch.randint(0, cfg_d["vocab_size"], (1, s_len), device="cuda")

            def fn():
                with torch.inference_mode():
                    return model(input_ids=ids, use_cache=True, **fk)

            reps = 10 if s_len <= 2048 else 5
            t, s = T.events(fn, repeats=reps, warmup=2)
            # Matmul FLOPs (2 * params touched per token, lm_head for the kept logit only)
            # + causal attention (QK^T and PV, half the square).
            flops = 2.0 * pc["layers"] * s_len + 2.0 * pc["lm_head"] + 2.0 * 2 * L * h * s_len * s_len / 2
            rec.add(what="prefill", model=label, batch=1, prompt_len=s_len, dtype="bf16",
                    mode="hf_eager_sdpa", time_s=t, tokens_per_s=s_len / t, flops=flops,
                    achieved_flops=flops / t, mfu_vs_bf16_peak=flops / t / PEAK["bf16"],
                    repeats=len(s), **spread(s), **(extra or {}))
            log(f"prefill {label} s={s_len:5d}: {t*1e3:8.2f} ms  {s_len/t:9.0f} tok/s  "
                f"MFU {flops/t/PEAK['bf16']*100:5.1f}%")
            del ids
        except Exception as e:  # noqa: BLE001
            rec.error(f"prefill {label} s={s_len}", e)
        torch.cuda.empty_cache()
    rec.flush()


def reset_cache_len(cache, ctx: int):
    """transformers 5.x StaticLayer keeps a device-side write position; put it back at ctx."""
    for layer in getattr(cache, "layers", []) or []:
        cl = getattr(layer, "cumulative_length", None)
        if cl is not None and hasattr(cl, "fill_"):
            cl.fill_(ctx)


def skipped(torch, rec, what: str, deadline: float, kv_bytes: float, extra_bytes: float, total_mem: int) -> bool:
    """Record and report a decode point skipped for the time budget or for memory (KV + weights + 3 GB)."""
    if time.time() > deadline:
        rec.skip(what, "time budget")
        return True
    if torch.cuda.memory_allocated() + kv_bytes * 1.05 + 3e9 + extra_bytes > total_mem * 0.95:
        rec.skip(what, f"does not fit: KV {kv_bytes/1e9:.1f} GB + weights")
        log(f"skip {what}: KV {kv_bytes/1e9:.1f} GB")
        return True
    return False


def time_steps(torch, fn, before, repeats, warmup):
    """Median GPU seconds of fn(); before() runs (untimed) ahead of each call."""
    samples = []
    for i in range(warmup + repeats):
        before()
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        if i >= warmup:
            samples.append(e0.elapsed_time(e1) / 1e3)
    return statistics.median(samples), samples


def bench_decode(torch, T, rec, model, cfg, cfg_d, label, batches, ctxs, deadline, extra=None,
                 modes=("eager", "graph")):
    """Decode step over a static KV cache holding ctx random tokens; 1 new token per sequence.

    Eager pass over all (batch, ctx) first, then the CUDA-graph pass, so that a failed capture
    cannot spoil the eager numbers.
    """
    import inspect

    fk = forward_kwargs(model)
    pass_cache_position = "cache_position" in inspect.signature(model.model.forward).parameters
    kvb = kv_bytes_per_token(cfg_d)
    pc = param_counts(cfg_d)
    weight_bytes = 2 * (pc["layers"] + pc["lm_head"])  # embedding rows read are negligible
    total_mem = torch.cuda.get_device_properties(0).total_memory
    for mode in modes:
        for b in batches:
            for ctx in ctxs:
                what = f"decode {label} {mode} b={b} ctx={ctx}"
                kv = b * (ctx + 1) * kvb
                if skipped(torch, rec, what, deadline, kv, b * cfg_d["vocab_size"] * 4, total_mem):
                    continue
                cache = g = out = None
                try:
                    cache = make_static_cache(torch, cfg, b, ctx + 1)
                    ids = torch.randint(0, cfg_d["vocab_size"], (b, 1), device="cuda")
                    pos = torch.full((b, 1), ctx, device="cuda", dtype=torch.long)
                    kw = dict(fk)
                    if pass_cache_position:
                        kw["cache_position"] = torch.tensor([ctx], device="cuda")

                    def step():
                        with torch.inference_mode():
                            return model(input_ids=ids, past_key_values=cache, position_ids=pos,
                                         use_cache=True, **kw)

                    before = lambda: reset_cache_len(cache, ctx)  # noqa: E731
                    base = dict(model=label, batch=b, ctx=ctx, dtype="bf16", kv_cache="static",
                                weight_bytes=weight_bytes, kv_bytes=kv, **(extra or {}))
                    byts = weight_bytes + kv
                    if mode == "eager":
                        t, s = time_steps(torch, step, before, repeats=15, warmup=3)
                        mname = "hf_eager_static_cache"
                    else:
                        s_ = torch.cuda.Stream()
                        s_.wait_stream(torch.cuda.current_stream())
                        with torch.cuda.stream(s_):
                            for _ in range(3):
                                before()
                                step()
                        torch.cuda.current_stream().wait_stream(s_)
                        torch.cuda.synchronize()
                        before()
                        torch.cuda.synchronize()
                        g = torch.cuda.CUDAGraph()
                        with torch.cuda.graph(g):
                            out = step()
                        t, s = time_steps(torch, g.replay, before, repeats=30, warmup=3)
                        mname = "hf_static_cache_cuda_graph"
                    rec.add(what="decode_step", mode=mname, time_s=t, tokens_per_s=b / t,
                            implied_Bps=byts / t, frac_of_hbm_peak=byts / t / PEAK["hbm_Bps"],
                            repeats=len(s), **base, **spread(s))
                    log(f"decode {label} b={b:4d} ctx={ctx:5d} {mode:5s}: {t*1e3:8.3f} ms "
                        f"{byts/t/1e12:5.2f} TB/s eff")
                    if mode == "eager" and b == batches[0] and ctx == ctxs[0]:
                        before()
                        nk = count_kernels(torch, step)
                        rec.add(what="decode_kernel_count", mode=mname, kernels_per_step=nk, **base)
                        log(f"kernels per decode step: {nk}")
                except Exception as e:  # noqa: BLE001
                    rec.error(what, e)
                    if mode == "graph":
                        rec.skip(f"decode {label} graph (rest)", "capture failed once")
                        break
                finally:
                    del cache, g, out
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
                rec.flush()
            else:
                continue
            break  # a graph failure breaks out of both loops


def bench_e2e(torch, T, rec, deadline):
    cfg8 = json.loads(LLAMA8B_JSON.read_text())
    model, cfg = build_model(torch, cfg8)
    pc = param_counts(cfg8)
    rec.add(what="model_info", model="llama-3.1-8b", source=str(LLAMA8B_JSON.relative_to(REPO)),
            params=pc, kv_bytes_per_token=kv_bytes_per_token(cfg8),
            weights_init="random (transformers from_config), bf16, no download")
    bench_prefill(torch, T, rec, model, cfg8, "llama-3.1-8b", [128, 512, 2048, 8192])
    bench_decode(torch, T, rec, model, cfg, cfg8, "llama-3.1-8b", [1, 8, 32, 128],
                 [128, 1024, 4096], deadline)
    del model
    torch.cuda.empty_cache()

    # 70B layer slices at batch 1: two depths so that per-layer and fixed costs separate.
    for nl in (4, 8):
        if time.time() > deadline:
            rec.skip(f"llama-3.1-70b slice {nl} layers", "time budget")
            continue
        try:
            c = dict(LLAMA70B_CFG, num_hidden_layers=nl)
            model, cfg = build_model(torch, c)
            extra = {"slice_layers": nl, "full_layers": 80,
                     "note": "layer slice of Llama-3.1-70B; embed + lm_head full size"}
            rec.add(what="model_info", model=f"llama-3.1-70b-slice{nl}", params=param_counts(c),
                    kv_bytes_per_token=kv_bytes_per_token(c), **extra)
            bench_prefill(torch, T, rec, model, c, f"llama-3.1-70b-slice{nl}",
                          [128, 512, 2048, 8192], extra)
            bench_decode(torch, T, rec, model, cfg, c, f"llama-3.1-70b-slice{nl}", [1],
                         [128, 1024, 4096], deadline, extra)
        except Exception as e:  # noqa: BLE001
            rec.error(f"70b slice {nl}", e)
        finally:
            model = None
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- lean decode


class LeanLlama:
    """A minimal Llama decoder step in plain PyTorch: fused QKV and gate/up weights, static
    KV cache of exactly ctx+1 positions, GQA attention as one SDPA call per layer with the
    query heads of a KV group stacked (reads the KV cache once, no mask), random bf16 weights.
    This is what a graph-captured engine without custom kernels does; it is not HF.
    First run on a GPU on the H200 of docs/calibration-h200.md."""

    def __init__(self, torch, cfg: dict, n_layers: int | None = None, device: str = "cuda"):
        self.torch = torch
        self.device = device
        self.h = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.kvh = cfg["num_key_value_heads"]
        self.hd = self.h // self.nh
        self.i = cfg["intermediate_size"]
        self.v = cfg["vocab_size"]
        self.eps = cfg["rms_norm_eps"]
        self.L = n_layers or cfg["num_hidden_layers"]
        dev, bf = device, torch.bfloat16
        qkv = (self.nh + 2 * self.kvh) * self.hd

        def w(*shape):
            return torch.randn(*shape, device=dev, dtype=bf) * 0.02

        self.layers = [dict(n1=torch.ones(self.h, device=dev, dtype=bf), qkv=w(qkv, self.h),
                            o=w(self.h, self.h), n2=torch.ones(self.h, device=dev, dtype=bf),
                            gu=w(2 * self.i, self.h), down=w(self.h, self.i))
                       for _ in range(self.L)]
        self.norm = torch.ones(self.h, device=dev, dtype=bf)
        self.lm_head = w(self.v, self.h)
        self.weight_bytes = 2 * (sum(t.numel() for ly in self.layers for t in ly.values())
                                 + self.lm_head.numel() + self.norm.numel())

    def alloc(self, b: int, ctx: int):
        torch = self.torch
        self.b, self.ctx = b, ctx
        self.k = [torch.randn(b, self.kvh, ctx + 1, self.hd, device=self.device, dtype=torch.bfloat16)
                  for _ in range(self.L)]
        self.vc = [torch.randn_like(k) for k in self.k]
        self.x = torch.randn(b, self.h, device=self.device, dtype=torch.bfloat16)
        ang = ctx * (500000.0 ** (-torch.arange(0, self.hd, 2, device=self.device).float() / self.hd))
        emb = torch.cat([ang, ang])
        self.cos = emb.cos().to(torch.bfloat16)
        self.sin = emb.sin().to(torch.bfloat16)

    def free(self):
        self.k = self.vc = self.x = None

    def _rope(self, t):
        half = self.hd // 2
        rot = self.torch.cat([-t[..., half:], t[..., :half]], dim=-1)
        return t * self.cos + rot * self.sin

    def step(self):
        torch = self.torch
        F = torch.nn.functional
        b, kvh, hd, g = self.b, self.kvh, self.hd, self.nh // self.kvh
        x = self.x
        for li, ly in enumerate(self.layers):
            hcur = F.rms_norm(x, (self.h,), ly["n1"], self.eps)
            qkv = hcur @ ly["qkv"].t()
            q = qkv[:, : self.nh * hd].view(b, kvh, g, hd)
            k = qkv[:, self.nh * hd: (self.nh + kvh) * hd].view(b, kvh, 1, hd)
            v = qkv[:, (self.nh + kvh) * hd:].view(b, kvh, 1, hd)
            q = self._rope(q)
            self.k[li][:, :, self.ctx: self.ctx + 1].copy_(self._rope(k))
            self.vc[li][:, :, self.ctx: self.ctx + 1].copy_(v)
            a = F.scaled_dot_product_attention(q, self.k[li], self.vc[li])
            x = x + a.reshape(b, self.h) @ ly["o"].t()
            hcur = F.rms_norm(x, (self.h,), ly["n2"], self.eps)
            gu = hcur @ ly["gu"].t()
            x = x + (F.silu(gu[:, : self.i]) * gu[:, self.i:]) @ ly["down"].t()
        return F.rms_norm(x, (self.h,), self.norm, self.eps) @ self.lm_head.t()


def bench_lean(torch, T, rec, deadline):
    cfg8 = json.loads(LLAMA8B_JSON.read_text())
    runs = [("llama-3.1-8b", cfg8, None, [1, 8, 32, 128], [128, 1024, 4096])]
    runs += [(f"llama-3.1-70b-slice{n}", LLAMA70B_CFG, n, [1, 8, 32], [128, 1024, 4096]) for n in (4, 8)]
    total_mem = torch.cuda.get_device_properties(0).total_memory
    for label, cfg, nl, batches, ctxs in runs:
        if time.time() > deadline:
            rec.skip(f"lean {label}", "time budget")
            continue
        m = None
        try:
            m = LeanLlama(torch, cfg, nl)
            kvb = 2 * m.L * m.kvh * m.hd * 2
            extra = {"slice_layers": nl, "full_layers": cfg["num_hidden_layers"]} if nl else {}
            counted = False
            for b in batches:
                for ctx in ctxs:
                    what = f"lean decode {label} b={b} ctx={ctx}"
                    kv = b * (ctx + 1) * kvb
                    if skipped(torch, rec, what, deadline, kv, 0.0, total_mem):
                        continue
                    g = None
                    try:
                        m.alloc(b, ctx)
                        base = dict(model=label, batch=b, ctx=ctx, dtype="bf16", layers=m.L,
                                    weight_bytes=m.weight_bytes, kv_bytes=kv,
                                    impl="LeanLlama (plain torch, fused qkv/gate_up, SDPA GQA-stacked)",
                                    **extra)
                        byts = m.weight_bytes + kv
                        with torch.inference_mode():
                            te, se = time_steps(torch, m.step, lambda: None, repeats=10, warmup=3)
                            if not counted:
                                nk = count_kernels(torch, m.step)
                                rec.add(what="decode_kernel_count", mode="lean_eager",
                                        kernels_per_step=nk, **base)
                                log(f"lean kernels per step ({label}): {nk}")
                                counted = True
                            s_ = torch.cuda.Stream()
                            s_.wait_stream(torch.cuda.current_stream())
                            with torch.cuda.stream(s_):
                                for _ in range(3):
                                    m.step()
                            torch.cuda.current_stream().wait_stream(s_)
                            torch.cuda.synchronize()
                            g = torch.cuda.CUDAGraph()
                            with torch.cuda.graph(g):
                                m.step()
                            tg, sg = time_steps(torch, g.replay, lambda: None, repeats=30, warmup=3)
                        for mode, t, s in (("lean_eager", te, se), ("lean_cuda_graph", tg, sg)):
                            rec.add(what="decode_step", mode=mode, time_s=t, tokens_per_s=b / t,
                                    implied_Bps=byts / t, frac_of_hbm_peak=byts / t / PEAK["hbm_Bps"],
                                    repeats=len(s), **base, **spread(s))
                        log(f"lean {label} b={b:4d} ctx={ctx:5d}: eager {te*1e3:8.3f} ms  graph "
                            f"{tg*1e3:8.3f} ms  {byts/tg/1e12:5.2f} TB/s eff")
                    except Exception as e:  # noqa: BLE001
                        rec.error(what, e)
                    finally:
                        g = None
                        m.free()
                        torch.cuda.synchronize()
                        torch.cuda.empty_cache()
                    rec.flush()
        except Exception as e:  # noqa: BLE001
            rec.error(f"lean {label}", e)
        finally:
            m = None
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--parts", default="micro,e2e",
                    help="comma list of: micro (= memory,launch,gemm), memory, launch, gemm, e2e, lean")
    ap.add_argument("--gemm-m", default="", help="comma list of M to restrict the GEMM sweep")
    ap.add_argument("--budget-s", type=float, default=540.0, help="soft wall-clock budget")
    ap.add_argument("--gemm-budget-s", type=float, default=240.0)
    ap.add_argument("--chip", default="h100-sxm", help="catalog id of the GPU under test (sets the reference peaks)")
    args = ap.parse_args(argv)
    try:
        set_peaks(args.chip)
    except (OSError, ValueError, KeyError) as exc:  # unknown chip id or unreadable catalog: one line, exit 2
        print(f"gpu_microbench: error: {exc}", file=sys.stderr)
        return 2
    t_start = time.time()
    deadline = t_start + args.budget_s
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if "micro" in parts:
        parts |= {"memory", "launch", "gemm"}
    gemm_m = [int(x) for x in args.gemm_m.split(",") if x.strip()] or None

    rec = Recorder(args.out)
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        torch = None
        log(f"torch unavailable: {e!r}")
    rec.doc["environment"] = environment(torch)
    log(json.dumps(rec.doc["environment"], indent=1, default=str))
    if torch is None or not torch.cuda.is_available():
        rec.doc["cuda_available"] = False
        rec.skip("all", "no CUDA device (torch missing or torch.cuda.is_available() is False)")
        rec.flush()
        log("no CUDA: GPU parts skipped")
        return 0
    rec.doc["cuda_available"] = True
    rec.doc["method"] = {
        "timer": "torch.cuda.Event elapsed_time",
        "statistic": "median of repeats (min/max/n recorded)",
        "warmup": "yes (2-3 calls before timing; graphs replayed once before timing)",
        "data": "torch.randn / randint (never zeros)",
        "l2_rotation": f"weights/buffers rotated to a >= {ROTATE_BYTES/1e6:.0f} MB working set "
                       f"(L2 as torch reports it: {rec.doc['environment'].get('l2_bytes')} B) except where mode == 'hot'",
        "short_kernels": "timed as CUDA-graph replay of `inner` back-to-back calls, divided by inner",
        "reference_peaks": PEAK,
    }
    torch.backends.cuda.matmul.allow_tf32 = True
    T = Timer(torch)
    rec.add(what="gpu_state_start", nvidia_smi=gpu_state())
    rec.flush()

    for name, fn in (("memory", lambda: bench_memory(torch, T, rec)),
                     ("launch", lambda: bench_launch(torch, T, rec)),
                     ("gemm", lambda: bench_gemm(torch, T, rec,
                                                 min(deadline, time.time() + args.gemm_budget_s),
                                                 gemm_m))):
        if name not in parts:
            continue
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            rec.error(name, e)
        log(f"== {name} done in {time.time()-t0:.1f} s")
        torch.cuda.empty_cache()
        rec.flush()
    if "e2e" in parts:
        t0 = time.time()
        try:
            bench_e2e(torch, T, rec, deadline)
        except Exception as e:  # noqa: BLE001
            rec.error("e2e", e)
        log(f"== e2e done in {time.time()-t0:.1f} s")
    if "lean" in parts:
        t0 = time.time()
        try:
            bench_lean(torch, T, rec, deadline)
        except Exception as e:  # noqa: BLE001
            rec.error("lean", e)
        log(f"== lean done in {time.time()-t0:.1f} s")
    rec.add(what="gpu_state_end", nvidia_smi=gpu_state())
    rec.doc["wall_s"] = time.time() - t_start
    rec.flush()
    log(f"wrote {args.out} ({len(rec.doc['entries'])} entries, {len(rec.doc['errors'])} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
