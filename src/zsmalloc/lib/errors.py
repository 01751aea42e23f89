"""The one error the decompressors raise."""


class DecompressError(ValueError):
    """A compressed object that does not decompress (corrupt, truncated, or not a page)."""
