"""Reserved for a Network Block Device front-end serving a Zram to real clients.

Not built yet (no issue asks for it): this package is empty, and nothing imports it.
"""
