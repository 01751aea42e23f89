"""Pool configuration: which kernel's behaviour to model, chain size, page size.

A *profile* names a kernel version whose zsmalloc behaviour we reproduce. Behaviour that
differs between versions is data here (group scheme, chain rule, default chain size), read
once by the pool; it is never an ``if version ==`` in a hot path.

Profiles:

``linux-6.18``  (default) min-waste chain rule, chain 8, 12 in-use-ratio fullness groups,
                insert at the list head, 6.4 compaction, no isolation during migration.
``linux-4.8``   the 2016 seed: used-percentage chain rule, chain 4, four fullness groups
                with the ->inuse insert optimisation, 4.8 compaction, zspage isolation
                during page migration.
``tuned``       6.18 plus the fix for the concurrent-writer race of the seed thread (re-check
                for a free slot after re-taking the class lock, keep a surplus zspage, take
                zspages waiting for deferred release first). Not a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROFILES = ("linux-6.18", "linux-4.8", "tuned")
PAGE_SIZES = (4096, 16384, 65536)
MIN_CHAIN, MAX_CHAIN = 1, 16

_DEFAULT_CHAIN = {"linux-6.18": 8, "linux-4.8": 4, "tuned": 8}


@dataclass(frozen=True)
class PoolConfig:
    """What to model. ``chain_size=None`` takes the profile's default (8, or 4 for 4.8)."""

    profile: str = "linux-6.18"
    chain_size: int | None = None
    page_size: int = 4096
    #: frames per arena chunk; None picks 2 MiB worth (at least 8 frames)
    chunk_frames: int | None = field(default=None, compare=False)
    #: address space reserved for frames; None: the machine's RAM + swap (nothing is
    #: committed until used; a pool can never hold more than the machine has)
    arena_bytes: int | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        if self.page_size not in PAGE_SIZES:
            raise ValueError(f"page_size {self.page_size!r} not supported; use one of {PAGE_SIZES}")
        chain = _DEFAULT_CHAIN[self.profile] if self.chain_size is None else self.chain_size
        if type(chain) is not int or not MIN_CHAIN <= chain <= MAX_CHAIN:
            raise ValueError(f"chain_size {self.chain_size!r} out of range {MIN_CHAIN}..{MAX_CHAIN}")
        object.__setattr__(self, "chain_size", chain)
        cf = self.chunk_frames
        if cf is None:
            cf = max(8, (2 << 20) // self.page_size)
        if type(cf) is not int or cf < 1 or cf & (cf - 1):
            raise ValueError(f"chunk_frames {self.chunk_frames!r} must be a power of two")
        object.__setattr__(self, "chunk_frames", cf)
        ab = self.arena_bytes
        if ab is not None and (type(ab) is not int or ab < cf * self.page_size):
            raise ValueError(f"arena_bytes {ab!r} must be an int of at least one chunk "
                             f"({cf * self.page_size} bytes)")

    @property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @property
    def kernel_48(self) -> bool:
        """True for the 2016 (4.8) behaviour set."""
        return self.profile == "linux-4.8"

    @property
    def chain_rule(self) -> str:
        """'usedpc' (4.8, get_pages_per_zspage) or 'min-waste' (6.3+, calculate_zspage_chain_size)."""
        return "usedpc" if self.kernel_48 else "min-waste"


def resolve_config(config=None, **kw) -> PoolConfig:
    """Accept a PoolConfig, None, or keyword arguments (profile=, chain_size=, page_size=)."""
    if config is None:
        return PoolConfig(**{k: v for k, v in kw.items() if v is not None})
    if kw and any(v is not None for v in kw.values()):
        raise ValueError("pass either config= or keyword settings, not both")
    if not isinstance(config, PoolConfig):
        raise ValueError(f"config must be a PoolConfig, not {type(config).__name__}")
    return config
