"""GPU prices from OpenCost: the per-node GPU price and spot flag read from OpenCost's exposition (in
its exact names and labels), preferred while fresh, the overrides and the table after the grace
period; the per-GPU price source series; the config checks; the namespace -> team info series."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from aifinops.exporters.config import Config, GPUPriceOverride
from aifinops.exporters.gpu.model import SourceError
from aifinops.exporters.gpu.opencost import (
    GPUPriceSourceCollector,
    OpenCostPricer,
    parse_opencost,
)
from aifinops.exporters.gpu.prices import GPUPricer, load_price_table
from aifinops.exporters.namespace_teams import NamespaceTeamCollector
from aifinops.exporters.runtime.config import ConfigError, load_config

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "opencost" / "metrics.prom"
H100 = "NVIDIA H100 80GB HBM3"


def test_the_gpu_price_and_spot_flag_of_each_node_are_read_from_opencost_metrics():
    prices = parse_opencost(FIXTURE.read_text(), fetched_at=10.0)
    # Nodes OpenCost prices at 0 (no GPU, or no price known) are left to the table.
    assert set(prices.nodes) == {"sim-node-0"}
    node = prices.nodes["sim-node-0"]
    assert node.usd_per_hour == Decimal("2.5")
    assert node.spot is True
    assert node.instance_type == "p5.48xlarge"
    assert prices.fetched_at == 10.0


def test_opencost_numbers_keep_their_printed_decimal_value():
    text = (
        'node_gpu_hourly_cost{arch="amd64",instance="n",instance_type="g5.xlarge",node="n",'
        'provider_id="p",region="r"} 1.006\n'
    )
    assert parse_opencost(text, 0).nodes["n"].usd_per_hour == Decimal("1.006")
    assert parse_opencost(text, 0).nodes["n"].spot is False


def test_a_body_that_is_not_an_exposition_is_refused():
    with pytest.raises(SourceError):
        parse_opencost('node_gpu_hourly_cost{node="n" 2.5\n', 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opencost_wins_while_fresh_then_the_overrides_and_the_table():
    clock = Clock()
    snap = parse_opencost(FIXTURE.read_text(), fetched_at=clock.now)
    table = GPUPricer(
        load_price_table(),
        [GPUPriceOverride(usd_per_hour=Decimal("4.1"), node="sim-node-0")],
    )
    pricer = OpenCostPricer(lambda: snap, table, 300, clock=clock)
    spot = pricer.price(H100, "sim-node-0")
    assert spot is not None
    assert (spot.usd_per_hour, spot.source) == (Decimal("2.5"), "opencost_spot")
    # sim-node-1: OpenCost has no GPU price for it; the table prices it.
    table_price = pricer.price(H100, "sim-node-1")
    assert table_price is not None
    assert (table_price.usd_per_hour, table_price.source) == (Decimal("6.88"), "table")
    # Past the grace period the last good read no longer counts: the override, then the table.
    clock.now += 300
    assert pricer.price(H100, "sim-node-0").usd_per_hour == Decimal("2.5")  # type: ignore[union-attr]
    clock.now += 1
    stale = pricer.price(H100, "sim-node-0")
    assert stale is not None
    assert (stale.usd_per_hour, stale.source) == (Decimal("4.1"), "override")
    # Never read at all: the same fallback.
    never = OpenCostPricer(lambda: None, table, 300, clock=clock)
    assert never.price(H100, "sim-node-0").source == "override"  # type: ignore[union-attr]


def test_the_price_source_of_each_gpu_is_one_series():
    collector = GPUPriceSourceCollector(
        lambda: {("n1", "0", "GPU-a"): "opencost_spot", ("n1", "1", "GPU-b"): "table"}
    )
    [family] = collector.collect()
    assert family.name == "aifinops_gpu_price_info"
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"node": "n1", "gpu": "0", "uuid": "GPU-a", "source": "opencost_spot"}, 1),
        ({"node": "n1", "gpu": "1", "uuid": "GPU-b", "source": "table"}, 1),
    ]


def test_the_price_source_series_are_bounded_by_max_gpus():
    sources = {(f"node-{i:03d}", "0", f"GPU-{i}"): "table" for i in range(50)}
    [family] = GPUPriceSourceCollector(lambda: sources, max_gpus=10).collect()
    assert len(family.samples) == 10
    assert family.samples[0].labels["node"] == "node-000"


def test_the_nodes_read_from_one_opencost_page_are_bounded(monkeypatch):
    from aifinops.exporters.gpu import opencost

    monkeypatch.setattr(opencost, "MAX_NODES", 3)
    text = "".join(f'node_gpu_hourly_cost{{node="n{i}",instance="n{i}"}} 2.5\n' for i in range(5))
    assert set(parse_opencost(text, 0).nodes) == {"n0", "n1", "n2"}


def test_the_opencost_settings_are_checked_when_the_config_loads(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "gpu:\n  prices:\n    opencost_url: opencost:9003\n"
        "    opencost_refresh_seconds: 120\n    opencost_max_age_seconds: 60\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(Config, cfg, environ={})
    assert "gpu.prices.opencost_url: must be an http:// or https:// URL" in err.value.problems
    assert (
        "gpu.prices.opencost_max_age_seconds: must be at least opencost_refresh_seconds"
        in err.value.problems
    )
    ok = load_config(
        Config,
        None,
        environ={"AIFINOPS_GPU_PRICES_OPENCOST_URL": "http://opencost.opencost:9003/metrics"},
    )
    assert ok.gpu.prices.opencost_url == "http://opencost.opencost:9003/metrics"


def test_the_namespace_team_map_is_one_info_series_per_mapped_namespace():
    [family] = NamespaceTeamCollector(
        {"ml-training": "nlp", "research": "science", "x": ""}
    ).collect()
    assert family.name == "aifinops_namespace_team_info"
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"namespace": "ml-training", "team": "nlp"}, 1),
        ({"namespace": "research", "team": "science"}, 1),
    ]
