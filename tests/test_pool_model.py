"""Seeded model tests: the Pool against a dict of bytes, with check() as it goes."""

import random

import pytest

import zsmalloc


def _run_model(profile, page_size, steps, seed, check_every=1000):
    pool = zsmalloc.Pool(profile=profile, page_size=page_size)
    rng = random.Random(seed)
    hcs = zsmalloc.huge_class_size(pool.config)
    ref: dict[int, bytes] = {}
    keys: list[int] = []          # for O(1) random choice
    pos: dict[int, int] = {}

    def add(h, d):
        ref[h] = d
        pos[h] = len(keys)
        keys.append(h)

    def remove(h):
        i = pos.pop(h)
        last = keys.pop()
        if last != h:
            keys[i] = last
            pos[last] = i
        del ref[h]

    target = 4000  # population the mix swings around
    for step in range(steps):
        r = rng.random()
        phase = (step // 20000) % 2  # growth, then shrink: compaction gets work
        p_alloc = 0.6 if phase == 0 else 0.35
        if r < p_alloc or not keys:
            kind = rng.random()
            if kind < 0.05:
                n = rng.randint(hcs, page_size)              # huge
            elif kind < 0.15:
                n = rng.randint(1, 64)                       # tiny
            elif kind < 0.25:
                sc = rng.choice(zsmalloc.size_classes(pool.config))   # class boundary
                n = max(1, min(page_size, sc.size - 8 + rng.choice((-1, 0, 1))))
            else:
                n = min(page_size, int(rng.expovariate(1 / (page_size / 4))) + 1)
            h = pool.malloc(n)
            assert h not in ref
            d = rng.randbytes(rng.randint(0, n)) if rng.random() < 0.2 else rng.randbytes(n)
            pool.write(h, d)
            add(h, d)
        elif r < 0.85:
            h = keys[rng.randrange(len(keys))]
            d = ref[h]
            assert pool.read(h, len(d)) == d
            if rng.random() < 0.3:        # overwrite in place
                d2 = rng.randbytes(len(d))
                pool.write(h, d2)
                ref[h] = d2
        elif r < 0.995:
            h = keys[rng.randrange(len(keys))]
            assert pool.read(h, len(ref[h])) == ref[h]
            pool.free(h)
            remove(h)
        else:
            before = pool.total_pages
            freed = pool.compact()
            assert pool.total_pages == before - freed
            assert pool.can_compact() == 0 or pool.config.kernel_48
        if step % check_every == 0:
            pool.check()
        if len(keys) > 3 * target:
            for h in keys[:target]:
                pool.free(h)
                del ref[h]
            keys[:] = keys[target:]
            pos.clear()
            pos.update({h: i for i, h in enumerate(keys)})
    pool.check()
    for h, d in ref.items():
        assert pool.read(h, len(d)) == d
    for h in list(ref):
        pool.free(h)
    pool.check()
    assert pool.total_pages == 0 and pool.objects == 0
    assert pool.arena.chunks_mapped == 0
    return pool


@pytest.mark.parametrize("profile", ["linux-6.18", "linux-4.8"])
@pytest.mark.parametrize("page_size", [4096, 16384])
def test_model_200k(profile, page_size):
    _run_model(profile, page_size, steps=200_000, seed=hash((profile, page_size)) & 0xFFFF)


@pytest.mark.parametrize("chain", [1, 2, 16])
def test_model_other_chains(chain):
    pool = zsmalloc.Pool(chain_size=chain)
    rng = random.Random(chain)
    live = {}
    for step in range(20000):
        if rng.random() < 0.55 or not live:
            n = rng.randint(1, 4096)
            h = pool.malloc(n)
            live[h] = rng.randbytes(n)
            pool.write(h, live[h])
        else:
            h = rng.choice(list(live)[:64])
            assert pool.read(h) == live.pop(h)
            pool.free(h)
        if step % 2000 == 0:
            pool.check()
    pool.compact()
    pool.check()
    for h, d in live.items():
        assert pool.read(h) == d


def test_64k_pages_small_model():
    pool = zsmalloc.Pool(page_size=65536)
    rng = random.Random(7)
    live = {}
    for _ in range(3000):
        if rng.random() < 0.6 or not live:
            n = rng.randint(1, 65536)
            h = pool.malloc(n)
            live[h] = rng.randbytes(n)
            pool.write(h, live[h])
        else:
            h = next(iter(live))
            assert pool.read(h) == live.pop(h)
            pool.free(h)
    pool.compact()
    pool.check()
    for h, d in live.items():
        assert pool.read(h) == d
