# C types of zsmalloc/core/interrupts.py.
from cpython.exc cimport PyErr_CheckSignals
