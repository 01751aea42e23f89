"""The command line: classes, demo, and error exits."""

import json

import pytest

from zsmalloc.cli import main


def test_classes_text(capsys):
    assert main(["classes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# linux-6.18, chain 8, page 4096: 119 classes")
    assert len(out) == 2 + 119
    assert out[-1].split()[:5] == ["254", "4096", "1", "1", "Y"]


def test_classes_json_48(capsys):
    assert main(["classes", "--profile", "linux-4.8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["chain_size"] == 4 and len(d["classes"]) == 69
    c208 = [c for c in d["classes"] if c["size"] == 208][0]
    assert (c208["pages_per_zspage"], c208["objs_per_zspage"]) == (2, 39)


def test_classes_bad_chain(capsys):
    assert main(["classes", "--chain-size", "17"]) == 2
    assert "chain_size 17" in capsys.readouterr().err


def test_demo_crafted(capsys):
    assert main(["demo", "--source", "crafted", "--pages", "1500"]) == 0
    out = capsys.readouterr().out
    assert "mm_stat after compact" in out and "read back 1500 pages: all correct" in out
    assert " Total " in out


def test_demo_16k_pages(capsys):
    assert main(["demo", "--source", "crafted", "--pages", "800", "--page-size", "16384"]) == 0
    assert "all correct" in capsys.readouterr().out


def test_unknown_subcommand():
    with pytest.raises(SystemExit):
        main(["nope"])
