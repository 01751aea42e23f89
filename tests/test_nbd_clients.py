"""Real NBD clients against ``zsmalloc serve``: nbdinfo, nbdcopy, nbdsh, qemu-img, qemu-io, fio.

Each test skips, naming the tool, where the tool is missing (Debian packages libnbd-bin,
python3-libnbd, qemu-utils, fio).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from test_nbd_support import need_tools, serve, test_data

# nbdsh runs "python3 -m nbd": Debian's python3 (python3-libnbd), not this venv's
DEBIAN_ENV = dict(os.environ, PATH="/usr/bin:/bin:/usr/sbin:/sbin")


def run(*cmd, timeout=300, env=None, cwd=None, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
                             f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r


def mm_stat(p) -> list[int]:
    """The server's mm_stat, read as any user would: SIGUSR1 prints the sysfs line."""
    os.kill(p.pid, signal.SIGUSR1)
    line = p.readline()
    assert line.startswith("mm_stat "), line
    p.readline()                                      # io_stat
    return [int(x) for x in line.split()[1:]]


@need_tools("nbdinfo")
def test_nbdinfo_sees_the_export_and_its_live_stats(tmp_path):
    with serve(tmp_path, "16M", extra=["--page-size", "16384", "--comp", "zstd"]) as p:
        info = json.loads(run("nbdinfo", "--json", p.uri).stdout)
        (ex,) = info["exports"]
        assert info["protocol"] == "newstyle-fixed" and info["structured"] is True
        assert ex["export-size"] == 16 << 20
        assert ex["block_size_minimum"] == 1 and ex["block_size_preferred"] == 16384
        assert ex["block_size_maximum"] == 32 << 20
        for cap in ("can_trim", "can_zero", "can_fast_zero", "can_multi_conn", "can_flush",
                    "can_fua", "can_df"):
            assert ex[cap] is True, cap
        assert ex["is_read_only"] is False
        assert "zstd page 16384" in ex["description"]
        assert "mm_stat 0 0 0" in ex["description"]
        listed = run("nbdinfo", "--list", "--json", p.uri).stdout
        assert json.loads(listed)["exports"][0]["export-name"] == ""


@need_tools("nbdcopy")
@pytest.mark.parametrize("extra", [[], ["--comp", "zstd", "--page-size", "65536"]],
                         ids=["lz4-4k", "zstd-64k"])
def test_nbdcopy_in_and_out_byte_for_byte(tmp_path, extra):
    src, back = tmp_path / "in.img", tmp_path / "out.img"
    data = test_data(24 << 20, seed=7)
    src.write_bytes(data + bytes(8 << 20))            # a zero tail: nbdcopy zeroes it
    with serve(tmp_path, "32M", extra=extra) as p:
        run("nbdcopy", "--connections=4", "--requests=16", src, p.uri)
        run("nbdcopy", p.uri, back)
        mm = mm_stat(p)
    assert back.read_bytes() == src.read_bytes()
    assert 0 < mm[0] <= 24 << 20                      # orig_data_size: the zero tail is free
    assert mm[1] < mm[0]                              # compr_data_size: it compressed


@need_tools("qemu-img", "qemu-io")
def test_qemu_img_convert_compare_and_qemu_io(tmp_path):
    src = tmp_path / "a.img"
    src.write_bytes(test_data(12 << 20, seed=3) + bytes(4 << 20))
    with serve(tmp_path, "16M") as p:
        target = f"nbd:unix:{p.socket}"
        run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, target)
        run("qemu-img", "compare", "-f", "raw", "-F", "raw", src, target)
        # qemu-io: unaligned writes (read-modify-write), discards and write-zeroes
        run("qemu-io", "-f", "raw", target,
            "-c", "write -P 0x5a 1000 3000",
            "-c", "read -P 0x5a 1000 3000",
            "-c", "write -P 0x77 8190 5",
            "-c", "read -P 0x77 8190 5",
            "-c", "write -z 20000 50000",
            "-c", "read -P 0 20000 50000",
            "-c", "discard 1048576 1048576",
            "-c", "write -P 0x33 1048576 4096",
            "-c", "read -P 0x33 1048576 4096")
        r = run("qemu-img", "compare", "-f", "raw", "-F", "raw", src, target, check=False)
        assert r.returncode == 1 and "mismatch" in r.stdout   # compare notices the changes
        bad = run("qemu-io", "-f", "raw", target, "-c", "read -P 0x5b 1000 3000", check=False)
        assert bad.returncode != 0 and "failed" in bad.stdout   # and a wrong pattern fails


@need_tools("fio")
@pytest.mark.parametrize("job", [
    ["--rw=randrw", "--bs=4k", "--iodepth=16"],
    ["--rw=randwrite", "--bsrange=512-64k", "--blockalign=512", "--iodepth=4"],
], ids=["randrw-4k", "randwrite-unaligned"])
def test_fio_random_io_with_verification(tmp_path, job):
    with serve(tmp_path, "32M") as p:
        r = run("fio", "--name=zs", "--ioengine=nbd", f"--uri={p.uri}", "--size=16M",
                "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
                "--do_verify=1", "--randrepeat=1", *job, cwd=tmp_path)
    assert "err= 0" in r.stdout
    assert "verify" not in r.stderr.lower(), r.stderr


NBDSH_SCRIPT = r"""
import nbd, os
h = nbd.NBD()
h.connect_uri(URI)
assert h.can_trim() and h.can_zero() and h.can_multi_conn() and h.can_fast_zero()
size = h.get_size()
data = os.urandom(3 * 4096 + 123)
h.pwrite(data, 4096 * 10 + 7)                     # unaligned: read-modify-write
assert h.pread(len(data), 4096 * 10 + 7) == data
h.pwrite(b"A" * 8192, 0)
h.trim(8192, 0)                                   # whole pages: discarded
assert h.pread(8192, 0) == bytes(8192)
h.pwrite(b"B" * 8192, 0)
h.trim(100, 200)                                  # partial page: skipped, nothing lost
assert h.pread(8192, 0) == b"B" * 8192
h.zero(300, 100)                                  # write-zeroes, partial: patched
assert h.pread(400, 0) == b"B" * 100 + bytes(300)
h.zero(4096, 0, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(4096, 0) == bytes(4096)
try:
    h.zero(4096, 1, nbd.CMD_FLAG_FAST_ZERO)       # needs a read-modify-write: not fast
    raise SystemExit("fast zero of a partial page succeeded")
except nbd.Error as e:
    assert e.errnum == 95, e                      # ENOTSUP
try:
    h.pread(4096, size - 100)
    raise SystemExit("read past the end succeeded")
except nbd.Error as e:
    assert e.errnum == 22, e                      # EINVAL
h.flush()
h2 = nbd.NBD()                                    # a second connection sees it all
h2.connect_uri(URI)
assert h2.pread(len(data), 4096 * 10 + 7) == data
h2.shutdown()
h.shutdown()
print("nbdsh ok")
"""


@need_tools("nbdsh")
def test_nbdsh_python_client(tmp_path):
    r = run("/usr/bin/python3", "-c", "import nbd", check=False, env=DEBIAN_ENV)
    if r.returncode != 0:
        pytest.skip("nbdsh needs Debian's python3-libnbd")
    with serve(tmp_path, "8M") as p:
        script = NBDSH_SCRIPT.replace("URI", repr(p.uri))
        out = run("nbdsh", "-c", script, env=DEBIAN_ENV).stdout
        assert "nbdsh ok" in out


@need_tools("nbdsh")
def test_discards_from_a_client_free_memory(tmp_path):
    r = run("/usr/bin/python3", "-c", "import nbd", check=False, env=DEBIAN_ENV)
    if r.returncode != 0:
        pytest.skip("nbdsh needs Debian's python3-libnbd")
    with serve(tmp_path, "16M", extra=["--compact-interval", "0.2"]) as p:
        run("nbdsh", "-u", p.uri, "-c",
            "h.pwrite(b''.join(b'block %d ' % i * 400 for i in range(2048))[:8 << 20], 0)",
            env=DEBIAN_ENV)
        full = mm_stat(p)
        run("nbdsh", "-u", p.uri, "-c", "h.trim(8 << 20, 0)", env=DEBIAN_ENV)
        empty = mm_stat(p)
    assert full[0] == 8 << 20 and full[2] > 0
    assert empty[0] == 0 and empty[2] == 0            # orig_data_size, mem_used_total


@need_tools("nbdkit", "nbdcopy")
def test_nbdkit_nbd_plugin_proxies_to_the_server(tmp_path):
    """nbdkit as a client: its nbd plugin forwards another client's requests to us."""
    src, back = tmp_path / "in.img", tmp_path / "out.img"
    src.write_bytes(test_data(8 << 20, seed=11))
    with serve(tmp_path, "8M") as p:
        proxy_sock = tmp_path / "proxy.sock"
        proxy = subprocess.Popen(["nbdkit", "--exit-with-parent", "-f", "-U", str(proxy_sock),
                                  "nbd", f"socket={p.socket}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not proxy_sock.exists():
                assert proxy.poll() is None and time.monotonic() < deadline, proxy.stderr.read()
                time.sleep(0.05)
            run("nbdcopy", src, f"nbd+unix:///?socket={proxy_sock}")
        finally:
            proxy.terminate()
            proxy.wait(20)
        run("nbdcopy", p.uri, back)                   # read back from the server itself
    assert back.read_bytes() == src.read_bytes()
