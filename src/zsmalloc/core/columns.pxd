# C types of zsmalloc/core/columns.py (compiled: a resize runs no Python code).
cpdef object resized(object col, Py_ssize_t n, long long fill=*)
