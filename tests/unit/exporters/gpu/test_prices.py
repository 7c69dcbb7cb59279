"""The GPU price table: the shipped one loads and prices every listed GPU; a bad table is refused with
each problem's line and field; overrides set prices per model, node, instance type and node label."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from aifinops.exporters.config import Config, GPUPriceOverride
from aifinops.exporters.gpu.prices import GPUPricer, PriceTableError, load_price_table
from aifinops.exporters.runtime.config import ConfigError, load_config

# Model names exactly as NVML / dcgm-exporter report them.
NAMES = {
    "NVIDIA H200": "H200",
    "NVIDIA H100 80GB HBM3": "H100",
    "NVIDIA H100 PCIe": "H100",
    "NVIDIA A100-SXM4-80GB": "A100-80GB",
    "NVIDIA A100 80GB PCIe": "A100-80GB",
    "NVIDIA A100-SXM4-40GB": "A100-40GB",
    "NVIDIA A100-PCIE-40GB": "A100-40GB",
    "NVIDIA L40S": "L40S",
    "NVIDIA L4": "L4",
    "NVIDIA A10G": "A10G",
    "Tesla T4": "T4",
    "Tesla V100-SXM2-16GB": "V100",
}


def test_the_shipped_table_prices_every_common_gpu_and_says_where_each_price_came_from():
    table = load_price_table()
    for name, key in NAMES.items():
        row = table.lookup(name)
        assert row is not None and row.model == key, name
    for row in table.rows:
        assert row.usd_per_hour == row.instance_usd_per_hour / row.gpus_per_instance
        assert row.source and row.region and row.as_of and row.provider
    assert table.by_model("H100").usd_per_hour == Decimal("6.88")
    assert table.lookup("NVIDIA GeForce RTX 4090") is None


def _write(tmp_path, text: str):
    path = tmp_path / "prices.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD_ROW = """\
  - model: X1
    match: 'X1'
    usd_per_hour: 1.5
    instance: x1.big
    instance_usd_per_hour: 6
    gpus_per_instance: 4
    provider: test
    region: here
    as_of: 2026-11-28
    source: a test
"""


def test_a_bad_table_lists_every_problem_with_its_line_and_field(tmp_path):
    path = _write(
        tmp_path,
        "gpus:\n"
        + GOOD_ROW
        + """\
  - model: X1
    match: '(unclosed'
    usd_per_hour: 2.0
    instance: x2
    instance_usd_per_hour: 8
    gpus_per_instance: 0
    provider: test
    region: here
    as_of: yesterday
    source: a test
    colour: red
  - model: X3
    match: 'X3'
    usd_per_hour: 1.00
    usd_per_hour: 1.25
    instance: x3
    instance_usd_per_hour: 5
    gpus_per_instance: 4
    provider: test
    region: here
    as_of: 2026-11-28
""",
    )
    with pytest.raises(PriceTableError) as err:
        load_price_table(path)
    problems = err.value.problems
    assert "prices.yaml:26: duplicate key 'usd_per_hour'" in problems
    assert (
        "prices.yaml:13: gpus[1].match: not a regular expression (missing ), unterminated subpattern at position 0)"
        in problems
    )
    assert (
        "prices.yaml:17: gpus[1].gpus_per_instance: must be a whole number of at least 1 (got 0)"
        in problems
    )
    assert "prices.yaml:20: gpus[1].as_of: must be a date YYYY-MM-DD (got 'yesterday')" in problems
    assert "prices.yaml:22: gpus[1].colour: unknown key" in problems
    assert "prices.yaml:23: gpus[2].source: required" in problems
    assert len(problems) == 6, problems


def test_a_price_that_does_not_follow_from_its_instance_is_refused(tmp_path):
    path = _write(
        tmp_path, "gpus:\n" + GOOD_ROW.replace("usd_per_hour: 1.5", "usd_per_hour: 1.49", 1)
    )
    with pytest.raises(
        PriceTableError, match=r"prices.yaml:4: gpus\[0\].usd_per_hour: 1.49 is not"
    ):
        load_price_table(path)


def test_a_missing_or_empty_table_is_refused(tmp_path):
    with pytest.raises(PriceTableError, match="cannot read"):
        load_price_table(tmp_path / "nope.yaml")
    with pytest.raises(PriceTableError, match="gpus: required"):
        load_price_table(_write(tmp_path, "{}\n"))


def test_overrides_win_in_order_and_match_model_node_instance_type_and_node_label():
    table = load_price_table()
    overrides = [
        GPUPriceOverride(Decimal("1.10"), node="onprem-7"),
        GPUPriceOverride(
            Decimal("2.20"), model="H100", node_label="karpenter.sh/capacity-type=spot"
        ),
        GPUPriceOverride(Decimal("3.30"), instance_type="p4d.24xlarge"),
        GPUPriceOverride(Decimal("4.40"), model="A10G"),
    ]
    pricer = GPUPricer(table, overrides)
    h100 = "NVIDIA H100 80GB HBM3"
    assert pricer.price(h100, "onprem-7").usd_per_hour == Decimal("1.10")
    spot = {"karpenter.sh/capacity-type": "spot"}
    assert pricer.price(h100, "n1", spot).usd_per_hour == Decimal("2.20")
    assert pricer.price(h100, "n1", spot).basis == "gpu.price_overrides[1]"
    # The spot rule names a model: an A100 on a spot node is not priced by it.
    a100 = "NVIDIA A100-SXM4-40GB"
    assert pricer.price(a100, "n1", spot).usd_per_hour == Decimal("2.74470525")
    assert pricer.price(
        a100, "n1", {"node.kubernetes.io/instance-type": "p4d.24xlarge"}
    ).usd_per_hour == Decimal("3.30")
    assert pricer.price("NVIDIA A10G", "n1").usd_per_hour == Decimal("4.40")
    on_demand = pricer.price(h100, "n1", {"karpenter.sh/capacity-type": "on-demand"})
    assert on_demand.usd_per_hour == Decimal("6.88")
    assert "p5.48xlarge" in on_demand.basis
    assert pricer.price("NVIDIA GeForce RTX 4090", "n1") is None
    # A catch-all override prices what the table does not know.
    assert GPUPricer(table, [GPUPriceOverride(Decimal("0.30"))]).price(
        "NVIDIA GeForce RTX 4090", "n"
    ).usd_per_hour == Decimal("0.30")


def test_overrides_are_checked_when_the_config_loads(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "gpu:\n  price_overrides:\n"
        "    - {usd_per_hour: -1, model: 'H1(00'}\n"
        "    - {usd_per_hour: 2.5, node_label: spot}\n"
        "    - {usd_per_hour: 1.0000000001}\n"
        "    - {usd_per_hour: 2.1, instance_type: g5.xlarge}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(Config, cfg, environ={})
    problems = err.value.problems
    assert "gpu.price_overrides[0].usd_per_hour: must not be negative (got -1)" in problems
    assert any(
        p.startswith("gpu.price_overrides[0].model: not a regular expression") for p in problems
    )
    assert "gpu.price_overrides[1].node_label: must be key=value" in problems
    assert (
        "gpu.price_overrides[2].usd_per_hour: more than 9 decimal places (got 1.0000000001)"
        in problems
    )
    assert not any(p.startswith("gpu.price_overrides[3]") for p in problems)
    ok = tmp_path / "ok.yml"
    ok.write_text("gpu:\n  price_overrides: [{usd_per_hour: 2.1, model: H100}]\n")
    assert load_config(Config, ok, environ={}).gpu.price_overrides[0].usd_per_hour == Decimal("2.1")
