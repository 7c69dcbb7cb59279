"""`aifinops price`: the breakdown a user checks a bill with."""

from __future__ import annotations

from aifinops.cli.aifinops import main


def test_price_prints_the_breakdown_by_token_type(capsys):
    code = main(
        [
            "price",
            "--provider",
            "anthropic",
            "--model",
            "claude-sonnet-4-5",
            "--input",
            "12000",
            "--cache-read",
            "8000",
            "--cache-write",
            "2000",
            "--output",
            "1000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["input"] == ["2,000", "3.0000", "0.00600000"]
    assert rows["cache_read"] == ["8,000", "0.3000", "0.00240000"]
    assert rows["cache_write"] == ["2,000", "3.7500", "0.00750000"]
    assert rows["output"] == ["1,000", "15.0000", "0.01500000"]
    assert rows["total"] == ["13,000", "0.03090000"]
    assert "exact total: $0.0309" in out


def test_price_applies_the_override_file_and_the_time(tmp_path, capsys):
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(
        "overrides:\n"
        "  - {provider: openai, model: gpt-4o, prices: {input: 1, output: 2},"
        " effective_from: 2025-01-01}\n"
    )
    args = ["price", "--provider", "openai", "--model", "gpt-4o"]
    args += ["--input", "1000000", "--output", "1000000", "--overrides", str(overrides)]
    assert main([*args, "--time", "2025-02-01T00:00:00Z"]) == 0
    assert "exact total: $3\n" in capsys.readouterr().out
    assert main([*args, "--time", "2024-12-31T00:00:00Z"]) == 0
    assert "exact total: $3\n" not in capsys.readouterr().out


def test_unknown_model_and_bad_input(capsys):
    args = ["price", "--provider", "openai", "--model", "no-such-model", "--input", "1"]
    assert main([*args, "--output", "1"]) == 1
    captured = capsys.readouterr()
    assert "no price for provider openai model no-such-model" in captured.out
    assert captured.err == ""
    bad = ["price", "--provider", "openai", "--model", "gpt-4o", "--input", "5"]
    assert main([*bad, "--cache-read", "9", "--output", "1"]) == 2
    assert (
        "--cache-read: cache_read_tokens + cache_write_tokens (9) exceed" in capsys.readouterr().err
    )
