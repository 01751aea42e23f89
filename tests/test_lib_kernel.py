"""Our lz4, lzo and lzo-rle against the running kernel's, page by page.

Each page is written to a fresh slot of a zram device of our own (hot-added, removed
after) and the kernel's compressed length read from the change in mm_stat's
compr_data_size (zsmalloc.lib.oracle); same-filled and huge pages show no length and must
be same-filled / huge for us too. Real pages: a child process's anonymous memory, ELF
files, text and ``ast.dump`` of Python modules. The full 100,000-page run is
benchmarks/kernel_lengths.py (docs/results/kernel_lengths.md). Needs root and zram
(marked ``kernel``).
"""

import pytest

import zsmalloc
from zsmalloc.lib import lz4 as L, lzo as Z, oracle
from zsmalloc import realpages as rp

N = 1500 if zsmalloc.COMPILED else 40          # pages of each kind

COMPRESS = {
    "lz4": lambda p: len(L.compress(p)),
    "lzo": lambda p: len(Z.compress(p)),
    "lzo-rle": lambda p: len(Z.compress(p, rle=True)),
}


@pytest.fixture(scope="module")
def pages():
    got = (rp.child_anon_pages(N, seed=3) + rp.elf_pages(N) + rp.text_pages(N)
           + oracle.ast_pages(N))
    assert len(got) >= 3 * N
    return got


@pytest.mark.kernel
@pytest.mark.parametrize("alg", ["lz4", "lzo", "lzo-rle"])
def test_lengths_equal_the_kernels(pages, alg):
    c = oracle.compare(pages, alg, COMPRESS[alg])
    assert c.pages == len(pages)
    assert c.ok, f"{c.pages - c.equal} pages differ, first: {c.mismatches}"
    assert c.counts[oracle.LEN] > len(pages) // 2      # mostly compressible pages
    if zsmalloc.COMPILED:
        assert c.counts[oracle.SAME] > 0 and c.counts[oracle.HUGE] > 0


@pytest.mark.kernel
def test_oracle_sees_a_wrong_length():
    """The check can fail: a compressor one byte off is caught on every length."""
    some = [p for p in oracle.ast_pages(20)]
    c = oracle.compare(some, "lz4", lambda p: len(L.compress(p)) + 1)
    assert c.counts[oracle.LEN] == 20 and c.equal == 0 and len(c.mismatches) == 20


def test_classify_and_same_filled():
    hcs = oracle.huge_class_size()
    assert hcs == 3625
    assert oracle.same_filled(bytes(4096)) and oracle.same_filled(b"abcdefgh" * 512)
    assert not oracle.same_filled(b"abcdefgh" * 511 + b"abcdefgX")
    assert oracle.classify(100, bytes(4096), hcs) == (oracle.SAME, None)
    assert oracle.classify(hcs, b"x" + bytes(4095), hcs) == (oracle.HUGE, None)
    assert oracle.classify(hcs - 1, b"x" + bytes(4095), hcs) == (oracle.LEN, hcs - 1)
    with pytest.raises(ValueError):
        oracle.ast_pages(-1)
