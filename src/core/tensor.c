/* Tensor shape helpers. */
#include "core.h"

#include <stdio.h>

int64_t lt_tensor_numel(const lt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t lt_tensor_nbytes(const lt_tensor *t) { return lt_dtype_nbytes(t->dtype, lt_tensor_numel(t)); }

void lt_tensor_set_shape(lt_tensor *t, int ndim, const int64_t *shape) {
    LT_ASSERT(ndim >= 1 && ndim <= LT_MAX_DIMS);
    t->ndim = ndim;
    for (int i = 0; i < LT_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
}

bool lt_tensor_same_shape(const lt_tensor *a, const lt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *lt_shape_str(const lt_tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
