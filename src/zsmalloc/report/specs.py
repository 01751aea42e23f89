"""Which replays a report runs: the allocators and zsmalloc configurations, from
comma-separated option values, and the report's sizes."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_CHAIN, MIN_CHAIN, PAGE_SIZES, PROFILES, PoolConfig

__all__ = ["ReportError", "RunSpec", "make_specs", "ALLOCATORS", "DEFAULT_PAGES", "QUICK_PAGES",
           "DEFAULT_ROUNDS"]

DEFAULT_PAGES = 65536          # 4 KiB pages (256 MiB); other page sizes hold the same bytes
QUICK_PAGES = 1200
DEFAULT_ROUNDS = 3
ALLOCATORS = ("zsmalloc", "zbud", "z3fold", "zblock")


class ReportError(ValueError):
    """A bad report option; the message names the value."""


@dataclass(frozen=True)
class RunSpec:
    """One replay: an allocator and, for zsmalloc, the pool configuration."""

    allocator: str = "zsmalloc"
    profile: str = "linux-6.18"
    chain_size: int = 8
    page_size: int = 4096

    @property
    def is_zsmalloc(self) -> bool:
        return self.allocator == "zsmalloc"

    @property
    def config(self) -> PoolConfig:
        return PoolConfig(profile=self.profile, chain_size=self.chain_size,
                          page_size=self.page_size)

    @property
    def label(self) -> str:
        ps = "" if self.page_size == 4096 else f" {self.page_size // 1024}K"
        if self.is_zsmalloc:
            return f"zsmalloc {self.profile.removeprefix('linux-')} c{self.chain_size}{ps}"
        return f"{self.allocator}{ps}"

    @property
    def is_reference(self) -> bool:
        """zsmalloc linux-6.18 chain 8: what the ratios compare against."""
        return self.is_zsmalloc and self.profile == "linux-6.18" and self.chain_size == 8


def _csv(value, what: str) -> list[str]:
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = [s.strip() for s in str(value).split(",")]
    items = [s for s in items if s]
    if not items:
        raise ReportError(f"--{what} {value!r} names nothing")
    return items


def make_specs(profiles="linux-6.18,linux-4.8", chains="4,8,16", page_sizes="4096,16384",
               allocators="zsmalloc,zbud,z3fold,zblock") -> list[RunSpec]:
    """The replays to run, from comma-separated lists (or lists). ReportError for bad values.

    zsmalloc runs every profile x chain x page size, except that linux-4.8 always uses its
    kernel's only chain size, 4 (CONFIG_ZSMALLOC_CHAIN_SIZE arrived in 6.3). Peers run once
    per page size they support.
    """
    profs = _csv(profiles, "profiles")
    for p in profs:
        if p not in PROFILES:
            raise ReportError(f"--profiles: unknown profile {p!r}; known: {', '.join(PROFILES)}")
    chs = []
    for c in _csv(chains, "chains"):
        try:
            n = int(c)
        except ValueError:
            raise ReportError(f"--chains: {c!r} is not an int") from None
        if not MIN_CHAIN <= n <= MAX_CHAIN:
            raise ReportError(f"--chains: chain size {n} out of range {MIN_CHAIN}..{MAX_CHAIN}")
        chs.append(n)
    pss = []
    for s in _csv(page_sizes, "page-sizes"):
        try:
            n = int(s)
        except ValueError:
            raise ReportError(f"--page-sizes: {s!r} is not an int") from None
        if n not in PAGE_SIZES:
            raise ReportError(f"--page-sizes: page size {n} not supported; use {PAGE_SIZES}")
        pss.append(n)
    allocs = _csv(allocators, "allocators")
    for a in allocs:
        if a not in ALLOCATORS:
            raise ReportError(f"--allocators: unknown allocator {a!r}; use {', '.join(ALLOCATORS)}")
    specs: list[RunSpec] = []
    for P in dict.fromkeys(pss):
        if "zsmalloc" in allocs:
            for prof in profs:
                for c in ([4] if prof == "linux-4.8" else chs):
                    s = RunSpec("zsmalloc", prof, c, P)
                    if s not in specs:
                        specs.append(s)
        for a in dict.fromkeys(allocs):
            if a != "zsmalloc" and _peer_supports(a, P):
                specs.append(RunSpec(a, "linux-6.18", 8, P))
    return specs


def _peer_supports(name: str, page_size: int) -> bool:
    from ..peers import PEERS
    try:
        PEERS[name](page_size=page_size)
    except ValueError:
        return False
    return True
