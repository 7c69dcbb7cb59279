"""The registry of GPU sources is the one list: the chart's values schema, the exporter's `--source`
choices, the demo's `--gpu-source` choices and the config check all agree with it, and each
registered source builds from the configuration."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from aifinops.cli.aifinops import main as aifinops_main
from aifinops.cli.demo.command import add_arguments as add_demo_arguments
from aifinops.cli.gpu_exporter import main as gpu_exporter_main
from aifinops.exporters.config import Config
from aifinops.exporters.gpu.sources import CONFIG_CHOICES, SOURCES, SourceContext, build_source
from aifinops.exporters.runtime.config import load_config
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

SCHEMA = Path(__file__).resolve().parents[4] / "charts" / "aifinops" / "values.schema.json"


def test_the_chart_schema_offers_exactly_the_registered_sources():
    schema = json.loads(SCHEMA.read_text())
    enum = schema["properties"]["gpuExporter"]["properties"]["source"]["enum"]
    assert enum == list(SOURCES)


def test_the_config_default_is_a_registered_source():
    assert load_config(Config, None, environ={}).gpu.source == next(iter(SOURCES))


def test_the_exporter_refuses_an_unregistered_source_flag_naming_every_registered_one(capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_exporter_main(["--source", "tpu"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tpu'" in err
    assert all(repr(name) in err for name in SOURCES), err


def test_the_demo_offers_auto_and_the_sources_that_need_no_other_service():
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    (action,) = [a for a in parser._actions if a.dest == "gpu_source"]
    assert action.choices == ["auto", *(n for n, k in SOURCES.items() if k.standalone)]
    assert "dcgm" not in action.choices  # it needs a dcgm-exporter to read


def test_the_config_check_and_the_daemon_refuse_an_unregistered_source(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    # Listed together with the schema's own problems, in one pass.
    bad.write_text("gpu: {source: tpu}\nclustr: x\n")
    message = f"gpu.source: must be one of {', '.join(SOURCES)} (got 'tpu')"
    assert aifinops_main(["config", "--config.file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "clustr: unknown key" in err and "(2 problems)" in err
    assert gpu_exporter_main(["--config.file", str(bad)]) == 2
    assert message in capsys.readouterr().err
    load_config(Config, None, environ={}, choices=CONFIG_CHOICES)
    assert Config().gpu.source in SOURCES


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_registered_source_builds_from_the_config(name, tmp_path):
    overrides = {"gpu.source": name, "gpu.dcgm_url": "http://127.0.0.1:9400/metrics"}
    config = load_config(Config, None, environ={}, overrides=overrides)
    ctx = SourceContext(config, CollectorHealth(), None, time.monotonic, {"NODE_NAME": "n1"})
    source, pods = build_source(ctx)
    assert pods is None  # no kubelet or API server known here
    assert callable(source.fetch)
    assert type(source).__module__.rsplit(".", 1)[1] == name
