"""Real pages (zsmalloc.realpages): child anon memory, ELF and text pages, the saved-pages
format, and workloads applied to a Zram with every page read back checked."""

import io
import json
import os
import struct
import sys
from contextlib import redirect_stdout

import cramjam
import pytest

import zsmalloc
from zsmalloc import realpages as rp

P = 4096
ZERO = bytes(P)


def _lz4(pg):
    return len(cramjam.lz4.compress_block(pg, store_size=False))


def _proc_reason():
    if not sys.platform.startswith("linux"):
        return "child pages need Linux /proc"
    if not os.path.exists(f"/proc/{os.getpid()}/pagemap"):
        return "/proc/<pid>/pagemap missing"
    return None


needs_proc = pytest.mark.skipif(_proc_reason() is not None, reason=_proc_reason() or "")


def _gone(pid):
    """True if ``pid`` is neither running nor a zombie child of ours."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass   # not our (unreaped) child any more
    else:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return int(fields[1]) != os.getpid()   # the pid was reused by someone else


@pytest.fixture(scope="module")
def anon():
    stats = {}
    pages = rp.child_anon_pages(400, seed=3, stats=stats)
    return pages, stats


# -- child anon pages ----------------------------------------------------------------------

@needs_proc
def test_child_anon_pages_full_size_and_varied(anon):
    pages, stats = anon
    assert len(pages) == 400
    assert all(type(pg) is bytes and len(pg) == P for pg in pages)
    assert stats["resident"] >= 400 and stats["read_failed"] == 0
    nonzero = [pg for pg in pages if pg != ZERO]
    assert len(nonzero) > 300
    sizes = sorted(_lz4(pg) for pg in nonzero)
    # a real heap: many distinct compressed lengths, from very compressible to near-raw
    assert len(set(sizes)) > 100
    assert sizes[len(sizes) // 10] < 1500 and sizes[-1] > 3000
    assert len(set(pages)) > 300


@needs_proc
def test_child_is_reaped(anon):
    _, stats = anon
    assert len(stats["children"]) == 1
    assert all(_gone(pid) for pid in stats["children"])


@needs_proc
def test_child_heap_ends_child_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with rp.ChildHeap(seed=1, budget=0) as c:
            pid = c.pid
            assert os.path.exists(f"/proc/{pid}/mem")
            raise RuntimeError("boom")
    assert _gone(pid)


@needs_proc
def test_more_children_when_one_is_not_enough(monkeypatch):
    monkeypatch.setattr(rp.anon, "CHILD_BUDGET", 0)   # a bare interpreter: a few thousand pages
    with rp.ChildHeap(seed=0) as c:
        one = len(c.resident_pages())
    stats = {}
    pages = rp.child_anon_pages(one + 50, seed=1, stats=stats)
    assert len(pages) == one + 50
    assert len(stats["children"]) >= 2
    assert len(set(stats["children"])) == len(stats["children"])
    assert all(_gone(pid) for pid in stats["children"])


def test_child_anon_pages_bad_arguments_start_nothing():
    with pytest.raises(ValueError, match="-1"):
        rp.child_anon_pages(-1)
    with pytest.raises(ValueError, match="1000"):
        rp.child_anon_pages(1, page_size=1000)
    assert rp.child_anon_pages(0) == []


# -- file-backed pages ---------------------------------------------------------------------

@pytest.mark.parametrize("page_size", [4096, 16384])
def test_elf_pages(page_size):
    pages = rp.elf_pages(100, page_size)
    if not pages:
        pytest.skip("no ELF files found in " + ", ".join(rp.ELF_DIRS))
    assert len(pages) <= 100
    assert all(len(pg) == page_size for pg in pages)
    # file order: the first page of the first file is its ELF header
    assert pages[0][:4] == b"\x7fELF"
    assert sum(pg[:4] == b"\x7fELF" for pg in pages) >= 2   # several files contribute


@pytest.mark.parametrize("page_size", [4096, 16384])
def test_text_pages(page_size):
    pages = rp.text_pages(100, page_size)
    if not pages:
        pytest.skip("no text files found (/usr/share/doc, stdlib)")
    assert len(pages) <= 100
    assert all(len(pg) == page_size for pg in pages)
    for pg in pages:
        body = pg.rstrip(b"\0")   # only the last page of a file is zero-padded
        assert b"\0" not in body
    assert any(pg.endswith(b"\0") for pg in pages)


def test_file_pages_bad_arguments():
    with pytest.raises(ValueError, match="'x'"):
        rp.elf_pages("x")
    with pytest.raises(ValueError, match="3000"):
        rp.text_pages(5, page_size=3000)
    assert rp.elf_pages(0) == [] and rp.text_pages(0) == []


@needs_proc
def test_mixed_pages_blend_and_order():
    s1, s2 = {}, {}
    a = rp.mixed_pages(200, seed=7, stats=s1)
    assert len(a) == 200 and all(len(pg) == P for pg in a)
    if s1["elf"] + s1["text"] < 80:
        pytest.skip("this machine has too few ELF/text files for the 25/15 % blend")
    assert (s1["anon"], s1["elf"], s1["text"]) == (120, 50, 30)
    assert all(_gone(pid) for pid in s1["children"])
    # the file-backed pages are exactly elf_pages/text_pages, in shuffled positions
    elf, text = rp.elf_pages(50), rp.text_pages(30)
    assert sorted(pg for pg, s in zip(a, s1["sources"]) if s == "elf") == sorted(elf)
    assert sorted(pg for pg, s in zip(a, s1["sources"]) if s == "text") == sorted(text)
    assert s1["sources"] != sorted(s1["sources"])          # shuffled, not concatenated
    rp.mixed_pages(200, seed=8, stats=s2)
    assert s2["sources"] != s1["sources"]                    # the seed picks the order


# -- saved pages ---------------------------------------------------------------------------

def _some_pages():
    return [ZERO, b"\xff" * P, bytes(range(256)) * 16, os.urandom(P)]


def test_save_load_round_trip(tmp_path):
    pages = _some_pages()
    path = tmp_path / "p.pages"
    assert rp.save_pages(pages, path) == 4
    raw = path.read_bytes()
    assert raw[:8] == b"ZSPAGES1"
    assert struct.unpack_from("<IQ", raw, 8) == (P, 4)
    assert len(raw) == 20 + 4 * P
    assert rp.load_pages(path) == pages
    assert rp.load_pages(path, page_size=None) == pages
    big = [b"a" * 16384, b"b" * 16384]
    rp.save_pages(big, path)
    assert rp.load_pages(path, 16384) == big


def test_load_errors(tmp_path):
    path = tmp_path / "p.pages"
    rp.save_pages(_some_pages(), path)
    good = path.read_bytes()
    cases = {
        "bad magic": b"ZSPAGES2" + good[8:],
        "truncated header": good[:12],
        "truncated": good[:-1],
        "trailing": good + b"x",
    }
    for what, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(rp.PageFileError, match=what):
            rp.load_pages(path)
    path.write_bytes(good)
    with pytest.raises(ValueError, match="wrong page size 4096, expected 16384"):
        rp.load_pages(path, page_size=16384)
    path.write_bytes(b"")
    with pytest.raises(rp.PageFileError, match="bad magic"):
        rp.load_pages(path)


def test_save_rejects_bad_lists_and_writes_nothing(tmp_path):
    path = tmp_path / "p.pages"
    with pytest.raises(ValueError, match="page 2 is 100 bytes"):
        rp.save_pages([ZERO, ZERO, bytes(100)], path)
    with pytest.raises(ValueError, match="no pages"):
        rp.save_pages([], path)
    assert list(tmp_path.iterdir()) == []


# -- summary -------------------------------------------------------------------------------

def test_summarize_counts():
    rnd = os.urandom(P)
    s = rp.summarize([ZERO, b"\x07" * P, rnd, b"ab" * (P // 2)])
    assert (s["pages"], s["same_filled"], s["zero_filled"], s["compressed"]) == (4, 3, 1, 1)
    # b"ab"*2048 repeats one 8-byte word, so it is same-filled too; the random page is huge
    assert s["huge"] == 1 and s["min"] == s["max"] == _lz4(rnd) >= 3625


# -- workloads -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workload_pages(anon):
    pages = list(anon[0][:150]) + rp.elf_pages(40) + rp.text_pages(30)
    return pages + [ZERO, b"\x01" * P]


def _run_checked(z, pages, ops):
    """Apply ops one at a time, keeping the reference dict; check every slot at the end."""
    expect = {}
    for op in ops:
        rp.apply(z, pages, [op])
        if op[0] == "write":
            expect[op[1]] = pages[op[2]]
        elif op[0] == "discard":
            for i in range(op[1], op[1] + op[2]):
                expect.pop(i, None)
    return expect


@pytest.mark.parametrize("kind", rp.WORKLOADS)
def test_workload_reads_back(kind, workload_pages):
    pages = workload_pages
    nr = 300
    ops = list(rp.workload_ops(pages, kind, seed=11, nr_slots=nr))
    z = zsmalloc.Zram(64 << 20)
    expect = _run_checked(z, pages, ops)
    for i in range(nr):
        assert z.read(i) == expect.get(i, ZERO), f"slot {i} after {kind}"
    z.pool.check()
    names = [op[0] for op in ops]
    assert names[:nr] == ["write"] * nr
    if kind == "fill":
        assert len(ops) == nr and len(expect) == nr
    elif kind == "overwrite-waves":
        assert names.count("write") > nr and len(expect) == nr
    elif kind == "discard-waves":
        assert names.count("discard") > 0 and names.count("read") > 0
        assert 0 < len(expect) < nr
    else:
        assert names.count("compact") == 4 and names.count("idle") >= 4
        assert len(expect) < nr


@pytest.mark.parametrize("kind", rp.WORKLOADS)
def test_apply_counts_and_checks_reads(kind, workload_pages):
    pages = workload_pages
    ops = list(rp.workload_ops(pages, kind, seed=2, nr_slots=200))
    z = zsmalloc.Zram(64 << 20)
    idles = []
    counts = rp.apply(z, pages, ops, on_idle=lambda: idles.append(1))
    for name in ("write", "read", "discard", "compact", "idle"):
        assert counts[name] == sum(op[0] == name for op in ops)
    assert counts["read_mismatches"] == 0
    assert len(idles) == counts["idle"]
    assert z.mm_stat().pages_compacted == counts["pages_compacted"]


def test_apply_detects_wrong_reads(workload_pages):
    class Lying:
        def write(self, i, pg): pass
        def read(self, i): return b"\x55" * P
        def discard(self, i, c): pass
        def compact(self): return 0
    ops = list(rp.workload_ops(workload_pages, "discard-waves", seed=1, nr_slots=100))
    assert rp.apply(Lying(), workload_pages, ops)["read_mismatches"] > 0


def test_workload_ops_deterministic_and_validated():
    pages = [ZERO, b"\x01" * P]
    a = list(rp.workload_ops(pages, "idle-compact", seed=5, nr_slots=50))
    assert a == list(rp.workload_ops(pages, "idle-compact", seed=5, nr_slots=50))
    assert a != list(rp.workload_ops(pages, "idle-compact", seed=6, nr_slots=50))
    assert all(0 <= op[2] < 2 for op in a if op[0] == "write")
    with pytest.raises(ValueError, match="'swap'"):
        rp.workload_ops(pages, "swap", 0, 10)
    with pytest.raises(ValueError, match="nr_slots"):
        rp.workload_ops(pages, "fill", 0, 0)
    with pytest.raises(ValueError, match="at least one page"):
        rp.workload_ops([], "fill", 0, 10)


# -- command line --------------------------------------------------------------------------

def test_cli_pages(tmp_path):
    from zsmalloc.cli import main
    out = tmp_path / "t.pages"
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["pages", "text", "20", str(out)])
    assert rc == 0
    pages = rp.load_pages(out)
    assert len(pages) == 20
    text = buf.getvalue()
    assert f"wrote 20 pages to {out}" in text
    s = rp.summarize(pages)
    assert f"median {s['median']}" in text and f"max {s['max']}" in text
    assert f"{s['same_filled']} same-filled" in text and f"{s['huge']} huge" in text


# ---- `zsmalloc pages`: the request is checked before memory is used (issue: reliability) ----

def test_pages_refuses_a_request_larger_than_memory_at_once(tmp_path):
    """`zsmalloc pages anon 10000000000` grew memory without a check; now one line, exit 2,
    before any child process starts."""
    import signal
    import subprocess
    out = tmp_path / "x.pages"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-m", "zsmalloc", "pages", "anon", "10000000000",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("still reading pages after 30 s: the request was not checked first")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, err
    assert "10000000000" in lines[0] and "at most" in lines[0]
    assert not out.exists()


def test_check_request_names_the_bad_value(tmp_path):
    from zsmalloc.realpages.cli import check_request
    check_request(1000, 4096, str(tmp_path / "ok.pages"), available=1 << 30)
    with pytest.raises(ValueError, match=r"N 200000 pages .* ask for at most 131,072"):
        check_request(200000, 4096, str(tmp_path / "ok.pages"), available=1 << 30)
    with pytest.raises(ValueError, match="N 0 must be at least 1"):
        check_request(0, 4096, str(tmp_path / "ok.pages"))
    with pytest.raises(ValueError, match="missing or not writable"):
        check_request(10, 4096, str(tmp_path / "no" / "such" / "x.pages"))
    with pytest.raises(ValueError, match="is a directory"):
        check_request(10, 4096, str(tmp_path))


@needs_proc
def test_pages_reports_progress_per_child_on_stderr(tmp_path, capsys):
    from zsmalloc.cli import main
    assert main(["pages", "anon", "200", str(tmp_path / "a.pages"), "--json"]) == 0
    cap = capsys.readouterr()
    assert "read 200 of 200 anon pages" in cap.err
    assert json.loads(cap.out)["pages"] == 200          # stdout stays machine-readable
