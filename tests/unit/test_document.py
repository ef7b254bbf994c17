"""The neutral report model and its rich, CSV and JSON back ends (issue 15, item 5)."""

import json

from siliconsim.report.document import Column, Document, Figure, Table, document_json, series, tables_csv, to_rich

DOC = Document("t", "compare", ("-m", "x"), "0.1.0",
               (Table("systems", (Column("system"), Column("TPOT", "ms")), (("h100-sxm", 7.48), ("b200", None))),),
               (Figure("stacked_bars", "f", "ms", "system", (series("memory", ["h100-sxm"], [6.6]),)),),
               ("assumed thing",), {"results": [1]})


def test_columns_carry_their_units_into_every_back_end():
    assert tables_csv(DOC).splitlines() == ["system,TPOT (ms)", "h100-sxm,7.48", "b200,"]
    doc = json.loads(document_json(DOC))
    assert doc["tables"][0]["rows"][0] == {"system": "h100-sxm", "TPOT (ms)": 7.48} and doc["record"] == {"results": [1]}


def test_rich_back_end_renders_tables_and_assumptions():
    from rich.console import Console

    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    for r in to_rich(DOC):
        console.print(r)
    text = console.export_text()
    assert "TPOT (ms)" in text and "7.48" in text and "–" in text and "assumed: assumed thing" in text
