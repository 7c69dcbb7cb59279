"""The daemons' and `aifinops`' command lines called in process: flags, config errors as exit
codes, the config check, a taken port."""

from __future__ import annotations

import bcrypt
import pytest

from aifinops.cli import bridge, gpu_exporter, token_exporter
from aifinops.cli.aifinops import main as aifinops_main


@pytest.mark.parametrize("module", [gpu_exporter, token_exporter, bridge])
def test_a_bad_config_exits_2_listing_every_problem(module, tmp_path, capsys):
    cfg = tmp_path / "c.yml"
    cfg.write_text("clustr: x\ntokens: {auth: {tokens: [{sha256: " + "0" * 64 + "}]}}\n")
    assert module.main(["--config.file", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "clustr: unknown key (did you mean cluster?)" in err
    assert "tokens.auth.tokens[0].team: required" in err


def test_config_check_verb(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text("cluster: eu-1\n")
    assert aifinops_main(["config", "--config.file", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("gpu: {source: tpu}\n")
    assert aifinops_main(["config", "--config.file", str(bad)]) == 2
    assert "gpu.source: must be one of nvml, dcgm, simulated (got 'tpu')" in capsys.readouterr().err


def test_config_check_verb_checks_the_web_config_with_the_daemons_loader(tmp_path, capsys):
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {tmp_path}/missing.crt\n  key_file: /nope/tls.key\n"
        "basic_auth_users:\n  short: '$2b$12$tooshort'\n  plain: secret\n"
        f"  slow: '$2b$31${'a' * 53}'\n"
        "extra: 1\n"
    )
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"web: {{config_file: {str(web)!r}}}\n")
    assert aifinops_main(["config", "--config.file", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"invalid web config {web} (6 problems)" in err
    for problem in (
        "extra: unknown key",
        f"tls_server_config.cert_file: cannot read {tmp_path}/missing.crt",
        "tls_server_config.key_file: cannot read /nope/tls.key",
        "basic_auth_users.short: not a valid bcrypt hash",
        "basic_auth_users.plain: must be a bcrypt hash",
        "basic_auth_users.slow: bcrypt cost 31 is over 17",
    ):
        assert problem in err
    # Files that are there but do not load as a certificate and key.
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    garbage = tmp_path / "garbage.yml"
    garbage.write_text(
        f"tls_server_config:\n  cert_file: {tmp_path}/tls.crt\n  key_file: {tmp_path}/tls.key\n"
    )
    assert aifinops_main(["config", "--web.config.file", str(garbage)]) == 2
    assert "tls_server_config: cannot load the certificate or key" in capsys.readouterr().err
    # The flag names a web config too, and a config with problems still has its web config checked.
    bad = tmp_path / "bad.yml"
    bad.write_text("clustr: x\n")
    assert aifinops_main(["config", "--config.file", str(bad), "--web.config.file", str(web)]) == 2
    err = capsys.readouterr().err
    assert "clustr: unknown key" in err and "basic_auth_users.plain" in err
    good = tmp_path / "good-web.yml"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    good.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    assert aifinops_main(["config", "--web.config.file", str(good)]) == 0
    assert f"{good}: valid web config" in capsys.readouterr().out
    assert aifinops_main(["config", "--web.config.file", str(tmp_path / "none.yml")]) == 2
    assert "none.yml (1 problem):\n  cannot read" in capsys.readouterr().err


def test_a_taken_port_exits_1_with_the_reason(capsys):
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert token_exporter.main([f"--web.listen-address=127.0.0.1:{port}"]) == 1
    assert "cannot listen on" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["nonsense", ":99999", "host:port"])
def test_config_check_refuses_an_address_the_daemon_cannot_bind(address, tmp_path, capsys):
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"web: {{listen_address: {address!r}}}\n")
    assert aifinops_main(["config", "--config.file", str(cfg)]) == 2
    assert "web.listen_address: listen address" in capsys.readouterr().err
    assert token_exporter.main(["--config.file", str(cfg)]) == 2
