"""Shared inputs and checks for tests/test_lib_lz4.py and tests/test_lib_lzo.py (no tests here).

Each test runs in the mode the process runs (compiled, or ``ZSMALLOC_PURE=1``); pure mode
is about a thousand times slower, so the example counts and sizes scale with
``zsmalloc.COMPILED``.
"""

import os
import random

from hypothesis import strategies as st

import zsmalloc

COMPILED = zsmalloc.COMPILED
EXAMPLES = 150 if COMPILED else 12        # hypothesis examples per round-trip test
FUZZ = 3000 if COMPILED else 60           # corrupted streams per fuzz test
MAX_SIZE = 70000 if COMPILED else 3000    # largest random input


def page_like(rng: random.Random, n: int) -> bytes:
    """n bytes that compress the way memory does: zero runs, repeats at many distances,
    small-alphabet text and some noise."""
    out = bytearray()
    while len(out) < n:
        r = rng.random()
        k = rng.randint(1, 300)
        if r < 0.2:
            out += bytes(k)
        elif r < 0.45 and out:
            d = rng.randint(1, min(len(out), 70000))
            start = len(out) - d
            for i in range(k):                     # may overlap: a repeating pattern
                out.append(out[start + i])
        elif r < 0.75:
            out += bytes(rng.choice(b"etaoin shrdlu\n") for _ in range(k))
        elif r < 0.85:
            out += bytes([rng.randrange(256)]) * k
        else:
            out += rng.randbytes(k)
    return bytes(out[:n])


@st.composite
def inputs(draw, max_size=MAX_SIZE):
    """Random bytes, small-alphabet bytes, or page-like data, of any size up to max_size."""
    kind = draw(st.sampled_from(["random", "alphabet", "page"]))
    n = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    if kind == "random":
        return rng.randbytes(n)
    if kind == "alphabet":
        alpha = rng.randbytes(rng.randint(1, 4))
        return bytes(rng.choice(alpha) for _ in range(n))
    return page_like(rng, n)


def corruptions(rng: random.Random, data: bytes):
    """A corrupted or truncated copy of a compressed stream."""
    b = bytearray(data)
    r = rng.random()
    if r < 0.25 and len(b) > 1:
        return bytes(b[:rng.randrange(len(b))])                      # truncated
    if r < 0.6:
        for _ in range(rng.randint(1, 4)):                           # bit flips
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if r < 0.8:
        i = rng.randrange(len(b))                                    # a run overwritten
        k = rng.randint(1, 16)
        b[i:i + k] = rng.randbytes(k)
        return bytes(b)
    if r < 0.9:
        i = rng.randrange(len(b) + 1)                                # bytes inserted
        b[i:i] = rng.randbytes(rng.randint(1, 8))
        return bytes(b)
    return rng.randbytes(rng.randint(0, 64))                         # garbage


def check_guarded_decompress(decompress_into, src: bytes, cap: int, error):
    """Decompress ``src`` into a window of a larger buffer, twice: reading from an exact
    copy, and from a window whose following bytes are random. Checks that nothing outside
    the output window changes, that the bytes after the input change nothing (nothing is
    read past the input), and that a failure is ``error``. Returns the outcome."""
    guard = 64
    outcomes = []
    for tail in (b"", os.urandom(32)):
        srcbuf = bytearray(src + tail)
        sv = memoryview(srcbuf)[:len(src)]
        big = bytearray(b"\xa5" * (cap + 2 * guard))
        window = memoryview(big)[guard:guard + cap]
        try:
            n = decompress_into(sv, window)
            assert 0 <= n <= cap
            outcomes.append(("ok", bytes(window[:n])))
        except error as e:
            outcomes.append(("error", str(e)))
        assert big[:guard] == b"\xa5" * guard, "write before the output buffer"
        assert big[guard + cap:] == b"\xa5" * guard, "write after the output buffer"
        sv.release()
        window.release()
    assert outcomes[0] == outcomes[1], "the result depends on bytes after the input"
    return outcomes[0]
