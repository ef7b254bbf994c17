"""Derive workload-preset statistics from the Azure LLM inference traces (2023).

Run ``python -m siliconsim.workloads.derive_presets [CODE_CSV [CONV_CSV]]``; it prints the
``derived`` numbers that ``data/presets.toml`` records (the packaged code trace is the default
for the first, ``/work/shared/data``-style paths may be given for either). What it computes:

- arrival rate: ``(n - 1) / (last - first)`` requests per second over the whole trace;
- burstiness: coefficient of variation (std / mean) of inter-arrival gaps, over the whole trace
  and over gaps shorter than ``ON_GAP_S`` (the trace is ON/OFF: long idle gaps dominate the
  whole-trace CV, see ``presets.toml``);
- lengths: empirical quantiles of prompt and output tokens at ``QUANTILES`` (sampling later
  interpolates this inverse CDF), plus a lognormal fit (mean and std of log tokens) for reference,
  and the correlation of log input and log output tokens (near zero, so they are drawn
  independently).

Source: Azure/AzurePublicDataset, AzureLLMInferenceTrace_{code,conv}.csv, CC-BY 4.0; Patel et
al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import sys

import numpy as np

from siliconsim.workloads.traces import read_trace

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
ON_GAP_S = 10.0


def derive(ref: str) -> dict[str, object]:
    """Statistics of one trace (a named trace or a path), rounded as recorded in presets.toml."""
    rs = read_trace(ref)
    t = rs.arrival_s
    gaps = np.diff(t)
    on = gaps[gaps < ON_GAP_S]
    log_in, log_out = np.log(rs.input_tokens), np.log(rs.output_tokens)
    return {
        "requests": len(rs),
        "span_s": round(float(t[-1] - t[0]), 1),
        "rate_per_s": round((len(rs) - 1) / float(t[-1] - t[0]), 3),
        "interarrival_cv": round(float(gaps.std() / gaps.mean()), 2),
        "interarrival_cv_on": round(float(on.std() / on.mean()), 2),
        "on_time_fraction": round(float(on.sum() / (t[-1] - t[0])), 3),
        "input_quantiles": [int(round(v)) for v in np.quantile(rs.input_tokens, QUANTILES)],
        "output_quantiles": [int(round(v)) for v in np.quantile(rs.output_tokens, QUANTILES)],
        "input_lognormal": (round(float(log_in.mean()), 3), round(float(log_in.std()), 3)),
        "output_lognormal": (round(float(log_out.mean()), 3), round(float(log_out.std()), 3)),
        "log_length_correlation": round(float(np.corrcoef(log_in, log_out)[0, 1]), 3),
        "mean_input_tokens": round(float(rs.input_tokens.mean()), 1),
        "mean_output_tokens": round(float(rs.output_tokens.mean()), 1),
    }


def main(argv: list[str]) -> int:
    import argparse

    from siliconsim.errors import SiliconsimError

    parser = argparse.ArgumentParser(prog="python -m siliconsim.workloads.derive_presets",
                                     description="Print the trace statistics that data/presets.toml records.")
    parser.add_argument("traces", nargs="*", default=["azure-code"], metavar="TRACE",
                        help="named trace (azure-code) or Azure/plain CSV/JSONL path (default azure-code)")
    args = parser.parse_args(argv)
    try:
        return _print_stats(args.traces)
    except SiliconsimError as exc:
        print(f"derive_presets: error: {exc}", file=sys.stderr)
        return 2


def _print_stats(refs: list[str]) -> int:
    for ref in refs:
        stats = derive(ref)
        print(f"# {ref}")
        for key, value in stats.items():
            print(f"{key} = {list(value) if isinstance(value, tuple) else value}")
        print(f"quantile_p = {list(QUANTILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
