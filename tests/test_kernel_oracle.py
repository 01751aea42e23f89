"""The kernel side of conformance testing: crafted pages and the /dev/zram0 driver.

The pure-Python tests always run.  Tests marked ``kernel`` drive the real /dev/zram0 (root,
free device; they hold /tmp/zram0.lock and reset the device before and after) and skip
with the reason from ``kernel_available()`` elsewhere.
"""

import os
import random

import pytest

import zsmalloc
from zsmalloc.zram.kernel import KernelZram, KernelZramUnavailable, kernel_available
from zsmalloc.zram.pages import (comp_len_range, craft_page, incompressible_page,
                                 is_same_filled, lz4_len, same_filled_page)

PAGE = 4096
HUGE = 3625                        # huge_class_size for chain 8 (spec §2.4)
AVAILABLE, REASON = kernel_available()


# ------------------------------------------------------------------ crafted pages (pure)

def test_craft_page_every_length_is_exact():
    lo, hi = comp_len_range()
    # 26: one non-zero byte in a zero page; 4114: 4096 literals + token + 17 length bytes.
    assert (lo, hi) == (26, 4114)
    rng = random.Random(1)
    for c in range(lo, hi + 1):
        page = craft_page(c, rng)
        assert len(page) == PAGE
        assert lz4_len(page) == c, c
        assert not is_same_filled(page)[0], c


def test_craft_page_uses_the_callers_rng():
    a = craft_page(1000, random.Random(7))
    assert craft_page(1000, random.Random(7)) == a
    assert craft_page(1000, random.Random(8)) != a


def test_craft_page_accepts_numpy_generator():
    np = pytest.importorskip("numpy")
    g = np.random.default_rng(3)
    for c in (26, 500, 3624, 4114):
        assert lz4_len(craft_page(c, g)) == c


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_craft_page_other_page_sizes(page_size):
    lo, hi = comp_len_range(page_size)
    rng = random.Random(page_size)
    lengths = {lo, lo + 1, hi - 1, hi, *(rng.randrange(lo, hi + 1) for _ in range(40))}
    for c in sorted(lengths):
        page = craft_page(c, rng, page_size)
        assert len(page) == page_size and lz4_len(page) == c


@pytest.mark.parametrize("bad", [25, 4115, 0, -1, 3.5, True, "100"])
def test_craft_page_rejects_bad_lengths(bad):
    with pytest.raises(ValueError, match=repr(bad) if not isinstance(bad, int) or
                       isinstance(bad, bool) else str(bad)):
        craft_page(bad, random.Random(0))


def test_craft_page_rejects_bad_page_size():
    with pytest.raises(ValueError, match="3000"):
        craft_page(100, random.Random(0), page_size=3000)


@pytest.mark.parametrize("word", [0, 0xAB * 0x0101010101010101, 0x0123456789ABCDEF, 2**64 - 1])
def test_same_filled_roundtrip(word):
    page = same_filled_page(word)
    assert len(page) == PAGE
    assert is_same_filled(page) == (True, word)


def test_not_same_filled():
    # A repeated 16-byte pattern is not same-filled: the kernel compares 8-byte words.
    assert is_same_filled(bytes(range(16)) * 256) == (False, None)
    # Only the last word differs (the kernel checks word 511 first).
    page = bytearray(same_filled_page(7))
    page[-1] ^= 1
    assert is_same_filled(bytes(page)) == (False, None)


def test_same_filled_rejects_bad_input():
    with pytest.raises(ValueError, match=str(2**64)):
        same_filled_page(2**64)
    with pytest.raises(ValueError, match="-1"):
        same_filled_page(-1)
    with pytest.raises(ValueError, match="4095"):
        is_same_filled(bytes(4095))


def test_incompressible_page():
    rng = random.Random(2)
    page = incompressible_page(rng)
    assert len(page) == PAGE
    assert lz4_len(page) == comp_len_range()[1]
    assert not is_same_filled(page)[0]


def test_kernel_available_answers_with_a_reason():
    ok, reason = kernel_available()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    with pytest.raises(ValueError, match="sda"):
        kernel_available("sda")


@pytest.mark.parametrize("kw, needle", [({"disksize": 0}, "0"), ({"disksize": -4096}, "-4096"),
                                        ({"disksize": 4096, "device": "sda"}, "sda"),
                                        ({"disksize": 4096, "comp_algorithm": ""}, "''")])
def test_kernel_zram_rejects_bad_arguments(kw, needle):
    with pytest.raises(ValueError, match=needle):
        KernelZram(**kw)


# ------------------------------------------------------------------ the running kernel

@pytest.fixture
def kz():
    with KernelZram(64 << 20) as dev:
        yield dev


def _fields(st):
    names = ("orig", "compr", "mem", "limit", "max", "same", "compacted", "huge", "huge_since")
    return dict(zip(names, st))


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
@pytest.mark.parametrize("comp_len, mem", [(330, 32768), (125, 28672), (190, 12288),
                                           (3624, 32768)])
def test_box_values_one_page(comp_len, mem):
    """Spec box: one crafted page on a fresh device (class 352: 8 pages, 144: 7, 208: 3, 3632: 8)."""
    with KernelZram(1 << 20) as dev:
        dev.write(0, craft_page(comp_len, random.Random(comp_len)))
        st = _fields(dev.mm_stat())
    assert st["orig"] == PAGE and st["compr"] == comp_len
    assert st["mem"] == mem and st["max"] == mem
    assert st["huge"] == 0 and st["same"] == 0


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_huge_threshold_stores_raw():
    with KernelZram(1 << 20) as dev:
        page = craft_page(HUGE, random.Random(5))
        dev.write(0, page)
        st = _fields(dev.mm_stat())
        assert dev.read(0) == page
    assert (st["orig"], st["compr"], st["mem"]) == (PAGE, PAGE, PAGE)
    assert st["huge"] == 1 and st["huge_since"] == 1


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_crafted_lengths_match_kernel(kz):
    """compr_data_size grows by exactly craft_page's length, across the whole range."""
    lo, hi = comp_len_range()
    lengths = set(range(lo, HUGE, 7))
    lengths |= {c for i in range(255) for c in (16 * i + 24, 16 * i + 25) if lo <= c < HUGE}
    lengths |= {c + d for c in range(36, HUGE, 255) for d in (-1, 0, 1)}  # family switches
    lengths |= {HUGE - 2, HUGE - 1}
    huge = {HUGE, HUGE + 1, 3700, 4000, 4098, 4099, 4112, 4113, hi}
    rng = random.Random(11)
    prev = kz.mm_stat()[1]
    wrong = []
    for slot, c in enumerate(sorted(lengths) + sorted(huge)):
        kz.write(slot, craft_page(c, rng))
        cur = kz.mm_stat()[1]
        want = c if c < HUGE else PAGE
        if cur - prev != want:
            wrong.append((c, cur - prev))
        prev = cur
    assert wrong == []
    assert kz.mm_stat()[7] == len(huge)


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_first_object_of_each_class_allocates_its_zspage(kz):
    """mem_used_total grows by pages_per_zspage of our class table for each class's first object."""
    rng = random.Random(12)
    slot = 0
    for cls in zsmalloc.size_classes():
        if cls.huge or cls.size - 8 < comp_len_range()[0]:
            continue          # class 32 is out of zram's reach: the shortest page is 26 + 8
        before = kz.mm_stat()[2]
        # len + 8 (handle) == cls.size lands exactly in this class
        kz.write(slot, craft_page(cls.size - 8, rng))
        slot += 1
        assert kz.mm_stat()[2] - before == cls.pages_per_zspage * PAGE, cls


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_same_filled_pages_use_no_memory(kz):
    words = [0, 0xAB * 0x0101010101010101, 0x0123456789ABCDEF]
    for i, w in enumerate(words):
        kz.write(i, same_filled_page(w))
    st = _fields(kz.mm_stat())
    assert st["orig"] == len(words) * PAGE and st["same"] == len(words)
    assert st["compr"] == 0 and st["mem"] == 0 and st["max"] == 0
    for i, w in enumerate(words):
        assert kz.read(i) == same_filled_page(w)


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_read_back_equals_written(kz):
    rng = random.Random(13)
    pages = [craft_page(c, rng) for c in (26, 100, 1000, 3000, 3624, 3625)]
    pages += [incompressible_page(rng), same_filled_page(5)]
    for i, p in enumerate(pages):
        kz.write(i, p)
    for i, p in enumerate(pages):
        assert kz.read(i) == p
    assert kz.read(len(pages)) == bytes(PAGE)      # never written: zeroes


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_discard_counts_notify_free(kz):
    rng = random.Random(14)
    kz.write(0, craft_page(500, rng))
    kz.write(1, same_filled_page(9))
    kz.write(2, craft_page(700, rng))
    kz.discard(0, 2)          # one compressed, one same-filled
    kz.discard(5, 3)          # three slots that were never written
    st = _fields(kz.mm_stat())
    assert kz.io_stat()[3] == 5                    # notify_free counts every page
    assert st["orig"] == PAGE and st["compr"] == 700 and st["same"] == 0
    assert kz.read(0) == bytes(PAGE) and kz.read(1) == bytes(PAGE)


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_overwrite_allocates_new_before_freeing_old(kz):
    """Spec §10.3: mem_used_max is sampled after zs_malloc(new), before zs_free(old)."""
    rng = random.Random(15)
    kz.write(0, craft_page(330, rng))             # class 352: 8 pages
    kz.write(0, craft_page(190, rng))             # class 208: 3 pages
    st = _fields(kz.mm_stat())
    assert st["mem"] == 3 * PAGE and st["max"] == (8 + 3) * PAGE
    kz.reset_mem_used_max()
    assert _fields(kz.mm_stat())["max"] == 3 * PAGE


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_mem_limit_refusal_keeps_old_data(kz):
    rng = random.Random(16)
    old = craft_page(190, rng)                    # class 208: 3 pages
    kz.write(0, old)
    kz.set_mem_limit(3 * PAGE)
    before = _fields(kz.mm_stat())
    failed = kz.io_stat()[1]
    with pytest.raises(MemoryError):
        kz.write(0, craft_page(330, rng))         # needs a new 8-page zspage
    after = _fields(kz.mm_stat())
    assert kz.read(0) == old
    assert after["limit"] == 3 * PAGE
    assert {k: v for k, v in after.items() if k != "max"} == \
           {k: v for k, v in before.items() if k != "max"}
    assert after["max"] == (3 + 8) * PAGE          # sampled before the limit check
    assert kz.io_stat()[1] == failed + 1           # the refusal counts as a failed write
    kz.write(1, craft_page(195, rng))              # fits the existing zspage: accepted
    assert kz.mm_stat()[0] == 2 * PAGE


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_compact_and_bad_index(kz):
    with pytest.raises(ValueError, match=str(kz.pages_per_disk)):
        kz.write(kz.pages_per_disk, bytes(PAGE))
    with pytest.raises(ValueError, match="100"):
        kz.write(0, bytes(100))
    rng = random.Random(17)
    for i in range(200):
        kz.write(i, craft_page(1000, rng))
    for i in range(0, 200, 2):
        kz.discard(i)         # every zspage half empty
    mem = kz.mm_stat()[2]
    kz.compact()
    st = _fields(kz.mm_stat())
    assert st["compacted"] > 0 and st["mem"] == mem - st["compacted"] * PAGE
    for i in range(1, 200, 2):
        assert lz4_len(kz.read(i)) == 1000


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_each_user_gets_a_device_of_its_own(kz):
    with KernelZram(1 << 20) as other:
        assert other.device != kz.device
        other.write(0, craft_page(500, random.Random(1)))
        kz.write(0, craft_page(300, random.Random(0)))
        assert other.mm_stat()[1] == 500 and kz.mm_stat()[1] == 300
    assert not os.path.exists(f"/sys/block/{other.device}")      # hot-removed after use
    assert kz.mm_stat()[1] == 300                                  # the first is undisturbed


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_lock_excludes_a_second_user_of_a_named_device():
    from zsmalloc.zram.kernel import hot_add, hot_remove
    dev = hot_add()
    try:
        with KernelZram(1 << 20, device=dev) as first:
            with pytest.raises(KernelZramUnavailable, match=f"{dev}.lock"):
                with KernelZram(1 << 20, device=dev, lock_timeout=0.2):
                    pass
            first.write(0, craft_page(300, random.Random(0)))  # the first user is undisturbed
            assert first.mm_stat()[1] == 300
    finally:
        hot_remove(dev)


@pytest.mark.kernel
@pytest.mark.skipif(not AVAILABLE, reason=f"kernel zram unavailable: {REASON}")
def test_unknown_algorithm_refused_and_device_released():
    with pytest.raises(ValueError, match="nosuchalgo"):
        with KernelZram(1 << 20, comp_algorithm="nosuchalgo"):
            pass
    with KernelZram(1 << 20, lock_timeout=1) as dev:   # lock released, device usable
        assert dev.mm_stat() == (0,) * 9
