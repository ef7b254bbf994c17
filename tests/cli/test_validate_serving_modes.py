"""`validate` on sweep rows with disaggregated pools and MTP (tests/cli/data/serving-modes.csv).

The file's rows are synthetic (their notes say so): DeepSeek-R1 FP8 on H200, 1k/1k, 64 in
flight, the published layout DP8-attention EP8 on every decode replica. Only relations between
the predictions are asserted, never their error against the made-up values."""

import json
from pathlib import Path

from siliconsim.cli.main import main

SUITE = Path(__file__).parent / "data" / "serving-modes.csv"


def _rows(capsys) -> dict[str, dict]:
    assert main(["validate", "--cases", str(SUITE), "--format", "json"]) == 0
    return {r["id"]: r for r in json.loads(capsys.readouterr().out)["concurrency"]["rows"]}


def test_disaggregated_and_mtp_rows_are_predicted_and_say_how(capsys):
    rows = _rows(capsys)
    agg_tpot, dis_tpot, dis_ttft = rows["Y0001"], rows["Y0002"], rows["Y0003"]
    plain_tput, mtp_tput, mtp_tpot, both_tpot = rows["Y0004"], rows["Y0005"], rows["Y0006"], rows["Y0007"]
    for r in (agg_tpot, dis_tpot, dis_ttft, plain_tput, mtp_tput, mtp_tpot, both_tpot):
        assert r["status"] == "predicted" and r["predicted"] > 0, r
    # disaggregation: the decode pool never stalls on prefills, and the layout string says which pools
    assert dis_tpot["predicted"] < agg_tpot["predicted"]
    assert "8P8D" in dis_tpot["layout"] and "decode: published layout" in dis_tpot["layout"]
    assert "KV over ib-ndr" in dis_tpot["layout"]  # 16 GPUs span two HGX nodes
    assert dis_ttft["predicted"] > dis_tpot["predicted"]  # a prompt's prefill outlasts a decode step
    # MTP (acceptance 0.875, DeepSeek-V3 report): faster per user and per system than plain decode
    assert mtp_tput["predicted"] > plain_tput["predicted"] and mtp_tpot["predicted"] < agg_tpot["predicted"]
    assert "speculative k=1, acceptance 0.875" in mtp_tput["layout"]
    assert both_tpot["predicted"] < dis_tpot["predicted"]


def test_rows_that_cannot_be_predicted_carry_the_reason(capsys):
    rows = _rows(capsys)
    assert rows["Y0008"]["status"] == "not-predicted"
    assert rows["Y0008"]["reason"] == "a disaggregated row needs both prefill_chips and decode_chips"
    assert rows["Y0009"]["reason"] == "mtp: llama-3.1-70b has no multi-token-prediction layer"
