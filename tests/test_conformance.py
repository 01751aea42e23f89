"""Conformance with the running kernel: our Zram and /dev/zram0 driven op by op.

Needs root and a free /dev/zram0 (marked ``kernel``; skips with the reason elsewhere).
24,000 operations over 4 seeds and all six mixes, compaction, discards and mem_limit hits
included; all 9 mm_stat fields and io_stat compared after every operation, and every page
read back from both devices equal to what was written.
"""

import pytest

from zsmalloc.zram import conform




@pytest.mark.kernel
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_conform_all_mixes(seed):
    total = {"compact": 0, "discard": 0, "limit_hits": 0}
    for mix in conform.MIXES:
        r = conform.run(seed, mix, 1000)
        assert r.divergence is None, r.divergence.report()
        assert r.read_mismatches == 0
        assert r.ops == 1000
        for k in total:
            total[k] += r.counts[k]
    # the stream really exercised what it claims
    assert total["compact"] > 0 and total["discard"] > 0 and total["limit_hits"] > 0


def test_generate_ops_is_deterministic_and_covers_kinds():
    a = [str(o) for o in conform.generate_ops(5, "mixed", 3000, 16384)]
    b = [str(o) for o in conform.generate_ops(5, "mixed", 3000, 16384)]
    assert a == b
    kinds = {o.kind for o in conform.generate_ops(5, "mixed", 3000, 16384)}
    assert kinds == {"write", "same", "incompressible", "discard", "compact", "reset_max",
                     "limit", "read"}
    with pytest.raises(ValueError, match="unknown mix"):
        list(conform.generate_ops(1, "nope", 1, 10))
