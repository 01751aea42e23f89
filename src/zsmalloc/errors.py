"""Exceptions. Caller mistakes are ValueError subclasses; running out is MemoryError."""


class InvalidHandle(ValueError):
    """A handle that was never returned by this pool, or was already freed."""


class CheckError(AssertionError):
    """A broken pool invariant; ``.invariant`` names it (see zsmalloc.maint.check)."""

    def __init__(self, invariant: str, message: str):
        super().__init__(f"[{invariant}] {message}")
        self.invariant = invariant
