"""Size classes: which slot size, chain length and object count serve each request size.

Kernel: the class loop of zs_create_pool, calculate_zspage_chain_size (6.3+, "min-waste"),
get_pages_per_zspage (<= 6.2, "usedpc"), can_merge, get_size_class_index and
zs_huge_class_size.

Classes are built from the largest index down. An index whose (pages_per_zspage,
objs_per_zspage) equals the previously *created* class points at that class, so the
representative of a run of mergeable indices is its highest index (largest size). The first
(largest) class that is not huge sets ``huge_class_size = size - 7``: a request of that many
bytes plus the 8-byte handle header no longer fits it.

Tables are computed once per (rule, chain, page size) and cached; building one costs about a
millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..config import PoolConfig, resolve_config

ZS_ALIGN = 8
ZS_HANDLE_SIZE = 8
ZS_MIN_ALLOC_SIZE = 32
CLASS_BITS = 8


@dataclass(frozen=True)
class SizeClass:
    """One distinct (representative) size class.

    ``index`` is the class's own (highest) index, ``first_index`` the lowest index merged
    into it. ``huge`` classes hold one whole-page object and keep the handle outside it.
    """

    index: int
    size: int
    pages_per_zspage: int
    objs_per_zspage: int
    huge: bool
    first_index: int

    def __repr__(self):
        h = " huge" if self.huge else ""
        return (f"SizeClass(index={self.index}, size={self.size}, "
                f"pages_per_zspage={self.pages_per_zspage}, objs_per_zspage={self.objs_per_zspage}{h})")


def chain_size_min_waste(size: int, page_size: int, chain: int) -> int:
    """Pages per zspage by the 6.3+ rule. Kernel: calculate_zspage_chain_size.

    A power-of-two size takes one page; otherwise the k in 1..chain with the least
    ``k*page_size % size`` (strict <, so the smallest k wins ties).
    """
    if size & (size - 1) == 0:
        return 1
    best, best_waste = 1, None
    for k in range(1, chain + 1):
        waste = (k * page_size) % size
        if best_waste is None or waste < best_waste:
            best, best_waste = k, waste
    return best


def chain_size_usedpc(size: int, page_size: int, chain: int) -> int:
    """Pages per zspage by the <= 6.2 rule. Kernel (4.8): get_pages_per_zspage.

    Keeps the first k with a strictly larger integer used-percentage; integer rounding is
    why it picks 2 pages for size 208 where 3 waste less.
    """
    best, best_pc = 1, 0
    for k in range(1, chain + 1):
        zspage_size = k * page_size
        used_pc = (zspage_size - zspage_size % size) * 100 // zspage_size
        if used_pc > best_pc:
            best, best_pc = k, used_pc
    return best


class ClassTable:
    """All size classes of one configuration, with O(1) lookups.

    ``rep[i]`` is the representative SizeClass of index i; ``classes`` the distinct ones in
    ascending size; ``for_request(n)`` the class serving ``zs_malloc(n)``.
    """

    def __init__(self, rule: str, chain: int, page_size: int):
        self.rule, self.chain, self.page_size = rule, chain, page_size
        self.delta = page_size >> CLASS_BITS
        # Kernel: ZS_SIZE_CLASSES = DIV_ROUND_UP(MAX - MIN, DELTA) + 1
        self.nr_indices = -(-(page_size - ZS_MIN_ALLOC_SIZE) // self.delta) + 1
        chain_fn = chain_size_min_waste if rule == "min-waste" else chain_size_usedpc
        rep: list[SizeClass | None] = [None] * self.nr_indices
        created: list[dict] = []
        prev = None
        self.huge_class_size = 0
        for i in range(self.nr_indices - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + i * self.delta, page_size)
            ppz = chain_fn(size, page_size, chain)
            objs = ppz * page_size // size
            if ppz != 1 and objs != 1 and not self.huge_class_size:
                self.huge_class_size = size - (ZS_HANDLE_SIZE - 1)
            if prev is not None and prev["ppz"] == ppz and prev["objs"] == objs:
                prev["first"] = i
                prev["members"].append(i)
                continue
            prev = {"index": i, "size": size, "ppz": ppz, "objs": objs, "first": i, "members": [i]}
            created.append(prev)
        self.classes: list[SizeClass] = []
        for c in reversed(created):
            sc = SizeClass(index=c["index"], size=c["size"], pages_per_zspage=c["ppz"],
                           objs_per_zspage=c["objs"], huge=(c["ppz"] == 1 and c["objs"] == 1),
                           first_index=c["first"])
            self.classes.append(sc)
            for i in c["members"]:
                rep[i] = sc
        self.rep: list[SizeClass] = rep  # type: ignore[assignment]
        # request length -> class, for 1..page_size (index 0 unused)
        self.by_request: list[SizeClass | None] = [None] + [
            rep[self.index_of(n + ZS_HANDLE_SIZE)] for n in range(1, page_size + 1)]

    def index_of(self, size: int) -> int:
        """Kernel: get_size_class_index (size already includes the handle)."""
        idx = 0
        if size > ZS_MIN_ALLOC_SIZE:
            idx = -(-(size - ZS_MIN_ALLOC_SIZE) // self.delta)
        return min(self.nr_indices - 1, idx)

    def for_request(self, n: int) -> SizeClass:
        """The class that serves zs_malloc(n), 1 <= n <= page_size."""
        return self.by_request[n]  # type: ignore[return-value]

    def tail_waste(self, sc: SizeClass) -> int:
        return sc.pages_per_zspage * self.page_size - sc.objs_per_zspage * sc.size

    def request_range(self, sc: SizeClass) -> tuple[int, int]:
        """Smallest and largest zs_malloc length that lands in ``sc``."""
        lo = 1
        if sc.first_index:
            lo = ZS_MIN_ALLOC_SIZE + (sc.first_index - 1) * self.delta + 1 - ZS_HANDLE_SIZE
        hi = self.page_size if sc.huge else sc.size - ZS_HANDLE_SIZE
        return lo, hi


@lru_cache(maxsize=None)
def _table(rule: str, chain: int, page_size: int) -> ClassTable:
    return ClassTable(rule, chain, page_size)


def class_table(config: PoolConfig | None = None) -> ClassTable:
    """The (cached) ClassTable for a configuration."""
    cfg = resolve_config(config)
    return _table(cfg.chain_rule, cfg.chain_size, cfg.page_size)


def size_classes(config: PoolConfig | None = None) -> list[SizeClass]:
    """Distinct size classes in ascending size. Contract API."""
    return list(class_table(config).classes)


def huge_class_size(config: PoolConfig | None = None) -> int:
    """Smallest zs_malloc length that lands in the huge class. Kernel: zs_huge_class_size.

    For ``linux-4.8`` this is what the same rule gives (4.17-6.2 kernels computed it); 4.8's
    zram itself used ``max_zpage_size = page_size * 3 // 4`` instead.
    """
    return class_table(config).huge_class_size
