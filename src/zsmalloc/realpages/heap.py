# ruff: noqa: E701, E702  (the data makers are kept one case a line)
"""The child heap program: builds a realistic Python heap, says READY, waits for EOF.

Run as ``python -I path/to/heap.py SEED BUDGET`` (what :class:`~.anon.ChildHeap` does: ``-I``
keeps the child free of this package and of the caller's environment, so its heap is the
program's own) or ``python -m zsmalloc.realpages.heap SEED BUDGET``. It builds records,
symbol tables, boxed numbers, text, numpy arrays (array.array without numpy), zero,
constant and random buffers, each part growing until the RSS has grown by its share of
``BUDGET`` bytes (RSS is what the parent reads back, so the mix stays stable), then frees a
third of the Python objects (holes with stale data, as in a long-running program), prints
``READY`` and blocks on stdin. It exits without interpreter teardown.

Standard library only, and nothing runs at import: the parent reads this file's path.
"""

import gc
import os
import random
import sys

PS = os.sysconf("SC_PAGE_SIZE")
rng = random.Random(0)          # reseeded by main()


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PS


WORDS = ("the of and to in is was that for on are with as his they be at one have this from "
         "or had by hot word but what some we can out other were all there when up use your how "
         "said an each she which do their time if will way about many then them write would "
         "like so these her long make thing see him two has look more day could go come did "
         "number sound no most people my over know water than call first who may down side "
         "been now find any new work part take get place made live where after back little "
         "only round man year came show every good me give our under name very through just "
         "form sentence great think say help low line differ turn cause much mean before move "
         "right boy old too same tell does set three want air well also play small end put "
         "home read hand port large spell add even land here must big high such follow act "
         "why ask men change went light kind off need house picture try us again animal point "
         "mother world near build self earth father head stand own page should country found "
         "answer school grow study still learn plant cover food sun four between state keep "
         "eye never last let thought city tree cross farm hard start might story saw far sea "
         "draw left late run while press close night real life few north open seem together "
         "next white children begin got walk example ease paper group always music those both "
         "mark often letter until mile river car feet care second book carry took science eat "
         "room friend began idea fish mountain stop once base hear horse cut sure watch color "
         "face wood main enough plain girl usual young ready above ever red list though feel "
         "talk bird soon body dog family direct pose leave song measure door product black "
         "short numeral class wind question happen complete ship area half rock order fire "
         "south problem piece told knew pass since top whole king space heard best hour better "
         "true during hundred five remember step early hold west ground interest reach fast "
         "verb sing listen six table travel less morning ten simple several vowel toward war "
         "lay against pattern slow center love person money serve appear road map rain rule "
         "govern pull cold notice voice unit power town fine certain fly fall lead cry dark "
         "machine note wait plan figure star box noun field rest correct able pound done "
         "beauty drive stood contain front teach week final gave green oh quick develop ocean "
         "warm free minute strong special mind behind clear tail produce fact street inch "
         "multiply nothing course stay wheel full force blue object decide surface deep moon "
         "island foot system busy test record boat common gold possible plane stead dry wonder "
         "laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes "
         "distant fill east paint language among").split()


def word():
    return WORDS[min(len(WORDS) - 1, int(rng.paretovariate(1.1)) - 1)] if rng.random() < 0.7 \
        else rng.choice(WORDS)


def sentence():
    s = " ".join(word() for _ in range(rng.randint(4, 18)))
    return s[0].upper() + s[1:] + rng.choice(".....?!")


keep = []


def grow(share, make, budget):
    """Add ``make()`` results until the RSS has grown by ``share`` of ``budget``."""
    start, goal = rss(), budget * share
    while rss() - start < goal:
        keep.append(make())


def records():
    out = []
    for i in range(500):
        first, last = rng.choice(WORDS).title(), rng.choice(WORDS).title()
        out.append({"id": rng.randrange(1 << 31), "name": f"{first} {last}",
                    "email": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.org",
                    "age": rng.randint(18, 90), "score": round(rng.gauss(50, 15), 2),
                    "active": rng.random() < 0.8, "tags": [word() for _ in range(rng.randint(0, 5))],
                    "created": f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"})
    return out


def symbols():
    return {f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{rng.randrange(10000)}": rng.randrange(1 << 20)
            for _ in range(2000)}


def numbers():
    k = rng.random()
    if k < 0.4:
        return [rng.gauss(0, 1) for _ in range(4000)]
    if k < 0.7:
        x = rng.randrange(1 << 20)
        return list(range(x, x + 4000))
    return tuple((rng.randrange(1000), rng.random(), word()) for _ in range(1000))


def text():
    return "\n".join(" ".join(sentence() for _ in range(rng.randint(2, 8))) for _ in range(200))


def zeros():
    b = bytearray(1 << 18)
    for i in range(0, len(b), PS):   # touch every page: only resident pages are read back
        b[i] = 0
    return b


def const():
    return bytearray([rng.choice((0xff, 0x01, 0x20, 0xaa))]) * (1 << 17)


def noise():
    return bytearray(rng.randbytes(1 << 16))


def make_arrays(seed):
    """The arrays part: numpy arrays of several kinds, or array.array without numpy."""
    try:
        import numpy as np
    except ImportError:
        return _stdlib_arrays
    g = np.random.default_rng(seed)

    def arrays():
        k, n = g.integers(8), 1 << 15
        if k == 0: return np.arange(n, dtype=np.int32) * int(g.integers(1, 9))
        if k == 1: return g.integers(0, 1000, n, dtype=np.int64)
        if k == 2: return g.standard_normal(n)
        if k == 3: return np.sin(np.linspace(0, float(g.integers(1, 200)), n)).astype(np.float32)
        if k == 4:
            a = np.zeros(n); idx = g.integers(0, n, n // 20); a[idx] = g.standard_normal(len(idx)); return a
        if k == 5: return np.full(n, int(g.integers(1, 1 << 16)), dtype=np.int64)
        if k == 6: return np.cumsum(g.integers(0, 5, n, dtype=np.int64))
        # an image: smooth gradients with a little sensor noise
        y, x = np.mgrid[0:128, 0:n // 128]
        img = 128 + 60 * np.sin(x / float(g.integers(5, 60))) + 40 * np.cos(y / float(g.integers(5, 60)))
        return np.clip(img + g.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return arrays


def _stdlib_arrays():
    """The arrays part without numpy."""
    import array
    k, n = rng.randrange(4), 1 << 15
    if k == 0: return array.array("i", range(n))
    if k == 1: return array.array("q", (rng.randrange(1000) for _ in range(n)))
    if k == 2: return array.array("d", (rng.gauss(0, 1) for _ in range(n)))
    return array.array("q", [rng.randrange(1 << 16)]) * n


def main(argv=None) -> None:
    global rng
    argv = sys.argv[1:] if argv is None else argv
    seed, budget = int(argv[0]), int(argv[1])
    rng = random.Random(seed)
    arrays = make_arrays(seed)
    for share, make in ((0.23, records), (0.10, symbols), (0.12, numbers), (0.10, text),
                        (0.28, arrays), (0.10, zeros), (0.04, const), (0.03, noise)):
        grow(share, make, budget)
    # free a third of the Python objects: holes with stale data, as in a long-running program
    for i in range(0, len(keep), 3):
        if isinstance(keep[i], (list, dict, tuple, str)):
            keep[i] = None
    gc.collect()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
