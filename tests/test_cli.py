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


# ---- hostile input: one line naming the bad value or file, exit 2, never a traceback ---------

def _hostile_cases(tmp):
    junk = tmp / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    empty = tmp / "empty.zst"
    empty.write_bytes(b"")
    far = tmp / "far.zst"
    far.write_text("zstrace 1 page_size=4096\nW 33554432 100\n")
    ok = tmp / "ok.zst"
    ok.write_text("zstrace 1 page_size=4096 disksize=40960\nW 1 100\n")
    missing_dir = tmp / "no" / "such"
    return [
        (["replay", str(tmp / "missing.zst")], "missing.zst"),
        (["replay", str(tmp)], str(tmp)),
        (["replay", str(empty)], "empty.zst"),
        (["replay", str(junk)], "junk.bin"),
        (["replay", str(far)], "33554432"),
        (["replay", str(ok), "--max-size", "0"], "'0'"),
        (["replay", str(ok), "--max-size", "12Q"], "'12Q'"),
        (["replay", str(ok), "--comp", "nosuch"], "nosuch"),
        (["record-demo", str(missing_dir / "x.zst"), "--ops", "10"], "x.zst"),
        (["record-demo", str(tmp / "x.zst"), "--ops", "-5"], "-5"),
        (["record-demo", str(tmp / "x.zst"), "--disksize", "1000000000000000"],
         "1000000000000000"),
        (["record-demo", str(tmp / "x.zst"), "--disksize", "0"], "'0'"),
        (["pages", "anon", "0", str(tmp / "p.pages")], "N 0"),
        (["pages", "elf", "-3", str(tmp / "p.pages")], "N -3"),
        (["pages", "anon", "10000000000", str(tmp / "p.pages")], "10000000000"),
        (["pages", "text", "10", str(missing_dir / "p.pages")], "p.pages"),
        (["pages", "text", "10", str(tmp)], str(tmp)),
        (["report", "--out", str(tmp / "r"), "--pages", "10", "--no-progress"], "10"),
        (["report", "--out", str(tmp / "r"), "--chains", "99", "--no-progress"], "99"),
        (["report", "--out", str(tmp / "r"), "--profiles", "linux-9", "--no-progress"], "linux-9"),
        (["report", "--out", str(tmp / "r"), "--rounds", "0", "--no-progress"], "0"),
        (["report", "--out", str(tmp / "r"), "--pages", "100000000000", "--no-progress"],
         "100000000000"),
    ]


def test_bad_files_and_values_give_one_line_and_exit_2(tmp_path, capsys):
    failures = []
    for argv, needle in _hostile_cases(tmp_path):
        by_argparse = False
        try:
            rc = main(argv)
        except SystemExit as e:           # argparse's own refusals: usage, then one line
            rc, by_argparse = e.code, True
        except BaseException as e:        # a traceback, as a user would see it
            failures.append(f"{argv}: {type(e).__name__}: {e}")
            continue
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        last = err[-1] if err else ""
        one_line = len(err) == 1 or (by_argparse and err[0].startswith("usage:"))
        if rc != 2 or needle not in last or not one_line:
            failures.append(f"{argv}: exit {rc}, stderr {err[-3:]}")
    assert not failures, "\n".join(failures)
