cdef unsigned long long ROW_BITS, ROW_MASK
cpdef unsigned long long handle_make(unsigned long long gen, unsigned long long row) noexcept
cpdef unsigned long long handle_row(unsigned long long handle) noexcept
cpdef unsigned long long handle_gen(unsigned long long handle) noexcept
