"""Maintenance beside the core: invariant checks, statistics, giving metadata back.

Plain Python (not compiled): each reads the core's structures through their public
attributes and ``_check`` methods, under the pool's lock policy.
"""
