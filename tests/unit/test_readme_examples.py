"""The README's Python API example runs as printed (issue 16 asked for it; this keeps it true)."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_python_api_example_runs():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("2× h100-sxm") and [ln.split()[0] for ln in lines[1:]] == ["cs-3", "h200", "h100-sxm"]
