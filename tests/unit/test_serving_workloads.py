"""Trace readers, arrival processes and presets."""

import numpy as np
import pytest

from siliconsim.errors import InputError, UnknownIdError
from siliconsim.workloads import generate, load_preset, load_presets, read_trace, rescale, take
from siliconsim.workloads.arrivals import arrival_times_s, interarrival_s
from siliconsim.workloads.derive_presets import derive


def test_packaged_azure_code_trace_reads_in_full():
    rs = read_trace("azure-code")
    assert len(rs) == 8819
    assert rs.arrival_s[0] == 0.0 and np.all(np.diff(rs.arrival_s) >= 0)
    assert (rs.input_tokens[0], rs.output_tokens[0]) == (4808, 10)
    assert rs.arrival_s[1] == pytest.approx(0.052, abs=1e-6)  # 18:17:03.97996 -> 18:17:04.03196


def test_plain_csv_and_jsonl(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_tokens,output_tokens\n5.0,10,2\n3.0,20,4\n")
    rs = read_trace(str(p))
    assert list(rs.arrival_s) == [0.0, 2.0] and list(rs.input_tokens) == [20, 10]
    j = tmp_path / "t.jsonl"
    j.write_text('{"arrival_s": 0.5, "input_tokens": 7, "output_tokens": 3}\n\n{"arrival_s": 1, "input_tokens": 8, '
                 '"output_tokens": 1}\n')
    assert list(read_trace(str(j)).output_tokens) == [3, 1]


@pytest.mark.parametrize("body, where", [
    ("arrival_s,input_tokens,output_tokens\n0,10,2\n1,ten,2\n", ":3:"),
    ("arrival_s,input_tokens,output_tokens\n0,10,2\n1,10\n", ":3:"),
    ("arrival_s,input_tokens,output_tokens\n0,10,0\n", ":2:"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,4808,10\n2023-13-16 18:17:04.03,1,1\n", ":3:"),
    ("time,in,out\n0,1,1\n", ":1:"),
])
def test_malformed_line_is_named(tmp_path, body, where):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(InputError, match=f"bad.csv{where}") as exc:
        read_trace(str(p))
    assert "\n" not in str(exc.value)


def test_missing_trace_lists_named_ones():
    with pytest.raises(InputError, match="azure-code"):
        read_trace("/nonexistent/trace.csv")


def test_rescale_keeps_burst_shape_and_hits_rate():
    rs = read_trace("azure-code")
    fast = rescale(rs, 10.0)
    assert (len(fast) - 1) / fast.arrival_s[-1] == pytest.approx(10.0)
    ratio = fast.arrival_s[1:] / rs.arrival_s[1:]
    assert np.allclose(ratio, ratio[0])


def test_gamma_arrivals_have_requested_rate_and_cv():
    rng = np.random.default_rng(0)
    gaps = interarrival_s(rng, 200_000, 4.0, 3.0)
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)
    t = arrival_times_s(np.random.default_rng(1), 5.0, 1.0, duration_s=100.0)
    assert t[0] == 0.0 and t[-1] < 100.0 and 400 < t.size < 600


def test_presets_load_and_generate_deterministically():
    assert {"code-completion", "chat", "agentic-coding"} <= set(load_presets())
    p = load_preset("code-completion")
    a = generate(p, np.random.default_rng(7), count=500)
    b = generate(p, np.random.default_rng(7), count=500)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.input_tokens, b.input_tokens)
    assert a.input_tokens.max() <= 7437 and a.output_tokens.min() >= 6
    assert p.slo_ttft_s == 0.3 and p.trace == "azure-code"
    with pytest.raises(UnknownIdError, match="code-completion"):
        load_preset("code-completions")


def test_agentic_sessions_extend_their_context():
    rs = generate(load_preset("agentic-coding"), np.random.default_rng(2), count=300)
    kids = np.flatnonzero(rs.parent >= 0)
    assert kids.size > 100
    par = rs.parent[kids]
    assert np.all(rs.cached_tokens[kids] == rs.input_tokens[par] + rs.output_tokens[par])
    assert np.all(rs.input_tokens[kids] > rs.cached_tokens[kids])
    assert np.all(rs.input_tokens + rs.output_tokens <= 131072)
    assert np.median(rs.input_tokens[rs.parent < 0]) > 10_000


def test_take_by_duration_keeps_whole_sessions():
    rs = generate(load_preset("agentic-coding"), np.random.default_rng(2), count=300)
    cut = take(rs, duration_s=100.0)
    assert np.all(cut.parent < np.arange(len(cut)))
    assert np.all(cut.arrival_s[cut.parent < 0] < 100.0)


def test_code_preset_matches_derivation_script():
    stats = derive("azure-code")
    p = load_preset("code-completion")
    assert list(p.input_tokens.v) == stats["input_quantiles"]
    assert list(p.output_tokens.v) == stats["output_quantiles"]
    assert p.rate_per_s == stats["rate_per_s"] and p.cv == stats["interarrival_cv_on"]
