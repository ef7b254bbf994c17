import pytest

from siliconsim.errors import CatalogError
from siliconsim.units import parse_quantity


@pytest.mark.parametrize("text,dim,expected", [
    ("3.35 TB/s", "bytes_per_s", 3.35e12),
    ("80 GB", "bytes", 80e9),
    ("44 GiB", "bytes", 44 * 2**30),
    ("48 KiB", "bytes", 48 * 1024),
    ("989.4 TFLOP/s", "flop_per_s", 989.4e12),
    ("1978.9 TOP/s", "flop_per_s", 1978.9e12),
    ("400 Gb/s", "bytes_per_s", 50e9),
    ("2 us", "s", 2e-6),
    ("1.1 GHz", "hz", 1.1e9),
    ("700 W", "w", 700.0),
    ("23 kW", "w", 23e3),
    ("814 mm^2", "m2", 814e-6),
    ("0.08 USD/kWh", "usd_per_j", 0.08 / 3.6e6),
    ("5 years", "s", 5 * 365.25 * 86400),
])
def test_parses_to_si(text, dim, expected):
    assert parse_quantity(text, dim) == pytest.approx(expected)


def test_gb_is_not_gib():
    assert parse_quantity("1 GiB", "bytes") / parse_quantity("1 GB", "bytes") == pytest.approx(1.073741824)


@pytest.mark.parametrize("text,dim,msg", [
    ("80 GB", "bytes_per_s", "expected bytes_per_s"),
    ("80 furlongs", "bytes", "unknown unit"),
    ("fast", "bytes", "cannot parse"),
    (80, "bytes", "bare number"),
])
def test_bad_quantities_name_the_field(text, dim, msg):
    with pytest.raises(CatalogError, match=msg) as exc:
        parse_quantity(text, dim, where="x.toml: memory.hbm.capacity")
    assert "x.toml: memory.hbm.capacity" in str(exc.value)
