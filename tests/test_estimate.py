"""zsmalloc.estimate against a real child process: what it reads, what it predicts, its
errors, and (root + zram) --verify against the kernel, cleanup on Ctrl-C included.

The subject is a child Python process holding one region of known pages (written zeros,
same-filled, random, text) beside its interpreter's own heap; it answers a line on stdin
with the sha256 of that region, so we can check that a swap-out and back changed nothing.
"""

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import zsmalloc
from zsmalloc.estimate import Estimate, EstimateConfig
from zsmalloc.estimate.cli import main
from zsmalloc.estimate.engine import fill_word
from zsmalloc.estimate.guard import Frozen
from zsmalloc.estimate.procfs import ProcessGone, ProcessMemory, state

P = 4096
SUBJECT = r'''
import ctypes, hashlib, mmap, random, sys
P = mmap.PAGESIZE
n_zero, n_same, n_rand, n_text = (int(x) for x in sys.argv[1:5])
total = n_zero + n_same + n_rand + n_text
m = mmap.mmap(-1, total * P, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
rng = random.Random(7)
words = "zram swap page memory compress kernel allocator object class zspage".split()
corpus = " ".join(rng.choice(words) for _ in range(60000)).encode()
o = 0
for _ in range(n_zero):
    m[o] = 0                      # a write fault: a real, resident, all-zero page
    o += P
for _ in range(n_same):
    m[o:o + P] = b"\xab" * P
    o += P
for _ in range(n_rand):
    m[o:o + P] = rng.randbytes(P)
    o += P
for _ in range(n_text):
    k = rng.randrange(len(corpus) - P)
    m[o:o + P] = corpus[k:k + P]
    o += P
view = ctypes.c_char.from_buffer(m)
print(ctypes.addressof(view), total, flush=True)
for line in sys.stdin:
    print(hashlib.sha256(m).hexdigest(), flush=True)
'''
COUNTS = (200, 100, 150, 550)          # zero, same-filled, random, text pages


class Subject:
    """The child: ``with Subject() as s: s.pid, s.addr, s.pages, s.checksum()``."""

    def __init__(self, counts=COUNTS):
        self.counts = counts

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", SUBJECT, *map(str, self.counts)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        addr, n = self.proc.stdout.readline().split()
        self.addr, self.pages = int(addr), int(n)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def checksum(self) -> str:
        self.proc.stdin.write("sum\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def region(self) -> bytes:
        with open(f"/proc/{self.pid}/mem", "rb") as f:
            f.seek(self.addr)
            return f.read(self.pages * P)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def subject():
    with Subject() as s:
        yield s


# ------------------------------------------------------------------ what is read, what is fed

def test_scan_reads_the_known_region_and_classifies_its_pages(subject):
    cfg = EstimateConfig("lz4", 8, P, "linux-6.18")
    nz, ns, nr, nt = COUNTS
    with Estimate([cfg], disk_pages=100000, peers=False, record=True) as est:
        with ProcessMemory(subject.pid) as pm, Frozen(subject.pid, pm.pidfd):
            assert state(subject.pid) == "T"
            est.scan(pm)
        assert state(subject.pid) != "T"          # let go after the scan
        rec = est.record
        pos = {a: i for i, a in enumerate(rec.addr)}
        idx = [pos.get(subject.addr + k * P) for k in range(subject.pages)]
        assert None not in idx                     # every page of the region was taken
        written = [rec.written[i] for i in idx]
        words = [rec.words.get(i) for i in idx]
        # zero pages are kept by the swap layer; the rest is written
        assert written == [0] * nz + [1] * (ns + nr + nt)
        assert words[:nz] == [0] * nz
        assert words[nz:nz + ns] == [int.from_bytes(b"\xab" * 8, "little")] * ns
        assert words[nz + ns:] == [None] * (nr + nt)
        lens = [rec.lens["lz4"][i] for i in idx[nz + ns:]]
        be = zsmalloc.zram.make_backend("lz4")
        region = subject.region()
        buf = bytearray(2 * P)
        want = [be.compress_into(region[k * P:(k + 1) * P], buf)
                for k in range(nz + ns, subject.pages)]
        assert lens == want
        c = est.counts
        assert c.eligible >= subject.pages and c.read == c.eligible and c.unreadable == 0


def test_prediction_equals_a_zram_fed_page_by_page(subject):
    """The engine (threads, batches, swap rules) must give what the plain device gives when
    written the same non-zero pages one by one (the zero ones stay in the zeromap)."""
    cfgs = [EstimateConfig("lz4", 8, P, "linux-6.18"), EstimateConfig("zstd", 4, P, "linux-6.18"),
            EstimateConfig("lz4", 4, P, "linux-4.8")]
    with Estimate(cfgs, disk_pages=100000, peers=False, record=True) as est:
        with ProcessMemory(subject.pid) as pm, Frozen(subject.pid, pm.pidfd):
            est.scan(pm)
            pages = []
            for a in est.record.addr:
                buf = bytearray(P)
                assert pm.read_into(buf, a) == P
                pages.append(bytes(buf))
        results = est.results()
    for cfg, r in zip(cfgs, results):
        z = zsmalloc.Zram((len(pages) + 1) * P, cfg.comp_algorithm, cfg.pool_config())
        k = 0
        for pg in pages:
            if cfg.profile != "linux-4.8" and fill_word(pg) == 0:
                continue
            z.write(k, pg)
            k += 1
        assert r.mm_stat == dict(zip(zsmalloc.MmStat.FIELDS, z.mm_stat())), cfg
        z.close()


def test_cli_json_shape_and_page_sizes(subject):
    rc, out, err = run_cli("--pid", str(subject.pid), "--comp", "lz4", "--page-size", "4096",
                           "16384", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["pages"] >= subject.pages
    assert [(c["comp_algorithm"], c["page_size"]) for c in d["configs"]] == [("lz4", 4096),
                                                                            ("lz4", 16384)]
    for c in d["configs"]:
        assert set(c["mm_stat"]) == set(zsmalloc.MmStat.FIELDS)
        assert c["chain_size"] == 8 and c["profile"] == "linux-6.18"
        assert c["mm_stat"]["mem_used_total"] > 0
        assert set(c["peers"]) == {"zbud", "z3fold", "zblock"}
    small, big = d["configs"]
    # the region's zero pages are whole 16K pages too: kept by the swap layer in both
    assert small["zero_pages_skipped"] >= COUNTS[0] and big["zero_pages_skipped"] >= COUNTS[0] // 4


def test_cli_sample_states_an_interval(subject):
    rc, out, err = run_cli("--pid", str(subject.pid), "--comp", "lz4", "--sample", "0.3",
                           "--json", "--no-peers")
    assert rc == 0, err
    d = json.loads(out)
    c = d["configs"][0]
    lo, hi = c["ci95"]["mem_used_total"]
    assert lo <= c["mm_stat"]["mem_used_total"] <= hi and hi > lo
    assert 0 < d["counts"]["units_read"] < d["counts"]["units"]


# ------------------------------------------------------------------ errors

def test_missing_pid_is_a_one_line_error():
    pid = 4_000_000                       # above pid_max's largest default
    rc, out, err = run_cli("--pid", str(pid))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and f"process {pid} does not exist" in err


def test_bad_arguments_name_the_value(capsys):
    for argv, word in ((["--pid", "abc"], "'abc'"), (["--pid", "1", "--sample", "2"], "'2'"),
                       (["--pid", "1", "--chain-size", "x"], "'x'")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert word in capsys.readouterr().err
    rc, out, err = run_cli("--pid", str(os.getpid()))
    assert rc == 2 and "this process" in err
    rc, out, err = run_cli("--pid", "1", "--page-size", "8192")
    assert rc == 2 and "page size 8192" in err
    rc, out, err = run_cli("--pid", "1", "--comp", "nosuch")
    assert rc == 2 and "'nosuch'" in err and "Traceback" not in err


def test_a_process_that_exits_mid_scan_is_reported(subject):
    cfg = EstimateConfig("lz4", 8, P, "linux-6.18")
    with Estimate([cfg], disk_pages=100000, peers=False) as est:
        with ProcessMemory(subject.pid) as pm:
            subject.proc.kill()
            subject.proc.wait()
            with pytest.raises(ProcessGone, match=str(subject.pid)):
                est.scan(pm)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user")
def test_no_permission_is_a_clear_error(subject):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # the child: nobody, then the CLI
        try:
            os.close(r)
            sys.stderr = os.fdopen(w, "w")
            os.setgid(65534)
            os.setuid(65534)
            rc = main(["--pid", str(subject.pid), "--no-progress", "--no-peers", "--comp", "lz4"])
            sys.stderr.flush()
        except BaseException:
            rc = 99
        os._exit(rc)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2, err
    assert "no permission" in err and str(subject.pid) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert state(subject.pid) != "T"


# ------------------------------------------------------------------ the kernel (root + zram)

def _swap_names() -> set:
    with open("/proc/swaps") as f:
        return {line.split()[0] for line in f.readlines()[1:]}


def _gone(dev: str, disksize: int | None = None) -> bool:
    """``dev`` (hot-added by us) was removed. Other users may hot-add at the same time and
    get the same number back, so a device of that name with another size is not ours."""
    try:
        with open(f"/sys/block/{dev}/disksize") as f:
            size = int(f.read())
    except OSError:
        return True
    return disksize is not None and size != disksize


@pytest.mark.kernel
def test_verify_matches_the_kernel_and_puts_everything_back(subject):
    before_swaps = _swap_names()
    sha = subject.checksum()
    # Known, reported perturbation: now and then a few pages (4..26 of ~1,900) that the
    # pagemap shows swapped to our device are missing from its orig_data_size (cause not
    # found; docs/estimate.md). --verify reports it as negative foreign_pages; we accept
    # up to three such runs (two in a row were seen in a CI run) and then need a clean one.
    for attempt in range(4):
        rc, out, err = run_cli("--pid", str(subject.pid), "--comp", "lz4", "--verify", "--json")
        assert rc == 0, err
        r = json.loads(out)["verify"][0]
        assert f"/dev/{r['device']}" not in _swap_names()
        if r["checks"]["foreign_pages"] == 0:
            break
        assert r["checks"]["foreign_pages"] < 0      # missing pages, never extra ones
    pred, meas = r["predicted"], r["measured"]
    assert r["checks"]["baseline_equal"]
    assert r["checks"]["still_resident"] == 0 and r["checks"]["foreign_pages"] == 0
    assert pred["orig_data_size"] == meas["orig_data_size"]
    assert pred["same_pages"] == meas["same_pages"]
    assert pred["huge_pages"] == meas["huge_pages"]
    for f in ("mem_used_total", "compr_data_size"):
        assert abs(pred[f] - meas[f]) <= 0.001 * meas[f], (f, pred[f], meas[f])
    # fed the kernel's own compressed lengths, the model is the kernel, field for field
    assert r["kernel_lengths"] == meas
    # the devices are gone, swap is as before, the subject runs again with its data intact
    assert f"/dev/{r['device']}" not in _swap_names() and _swap_names() <= before_swaps
    assert _gone(r["device"], (r["checks"]["eligible_pages"] + 1 + 1024) * P)
    assert _gone(r["length_device"], (r["checks"]["eligible_pages"] + 1) * P)
    assert state(subject.pid) != "T"
    assert subject.checksum() == sha
    assert hashlib.sha256(subject.region()).hexdigest() == sha


@pytest.mark.kernel
def test_ctrl_c_during_verify_leaves_nothing_behind():
    before = _swap_names()
    with Subject((2000, 500, 3000, 20000)) as s:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        p = subprocess.Popen([sys.executable, "-m", "zsmalloc.estimate", "--pid", str(s.pid),
                              "--comp", "lz4", "--verify", "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        # interrupt once our swap device is active (the worst moment)
        ours = set()
        while time.monotonic() < deadline and not ours and p.poll() is None:
            ours = {n for n in _swap_names() - before if n.startswith("/dev/zram")}
            time.sleep(0.002)
        size = None
        for n in ours:
            with contextlib.suppress(OSError), open(f"/sys/block/{n[5:]}/disksize") as f:
                size = int(f.read())
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 130, err
        assert err == "zsmalloc estimate: interrupted\n"
        assert ours, "the swap device never showed up"
        assert not (ours & _swap_names())
        assert all(_gone(n[5:], size) for n in ours)
        assert state(s.pid) != "T"
        assert s.checksum() == hashlib.sha256(s.region()).hexdigest()
