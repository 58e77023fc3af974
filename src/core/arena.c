/* Bump arena over a list of large blocks. reset() rewinds to the first block and keeps every
 * block for reuse, so after the first step a training run allocates nothing per step. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

struct lt_arena_block {
    lt_arena_block *prev; /* earlier block, NULL for the first */
    lt_arena_block *next; /* later block kept across resets */
    size_t size, used;
    _Alignas(64) unsigned char data[];
};

#define ALIGN 64

void lt_arena_init(lt_arena *a, size_t block_size) {
    memset(a, 0, sizeof *a);
    a->block_size = block_size ? block_size : ((size_t)64 << 20);
}

void lt_arena_free(lt_arena *a) {
    if (!a) return;
    lt_arena_block *b = a->head;
    while (b && b->next) b = b->next;
    while (b) {
        lt_arena_block *p = b->prev;
        free(b);
        b = p;
    }
    memset(a, 0, sizeof *a);
}

void lt_arena_reset(lt_arena *a) {
    lt_arena_block *b = a->head;
    if (!b) return;
    while (b->prev) {
        b->used = 0;
        b = b->prev;
    }
    b->used = 0;
    a->head = b;
    a->used = 0;
}

void *lt_arena_alloc(lt_arena *a, size_t n) {
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n == 0) n = ALIGN;
    lt_arena_block *b = a->head;
    while (!b || b->size - b->used < n) {
        if (b && b->next) { /* reuse a block kept from an earlier step */
            b = b->next;
            b->used = 0;
            a->head = b;
            continue;
        }
        size_t size = a->block_size > n ? a->block_size : n;
        lt_arena_block *nb;
        if (posix_memalign((void **)&nb, ALIGN, sizeof *nb + size) != 0) {
            /* the arena is sized by the run's shapes; failing here is fatal by design */
            LT_ASSERT(!"host out of memory growing the activation arena");
        }
        nb->prev = b;
        nb->next = NULL;
        nb->size = size;
        nb->used = 0;
        if (b) b->next = nb;
        a->reserved += size;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *lt_arena_calloc(lt_arena *a, size_t n) {
    void *p = lt_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

lt_tensor *lt_arena_tensor(lt_arena *a, lt_dtype dt, int ndim, const int64_t *shape, bool zero) {
    lt_tensor *t = lt_arena_calloc(a, sizeof *t);
    t->dtype = dt;
    t->device = LT_CPU;
    lt_tensor_set_shape(t, ndim, shape);
    size_t nb = lt_tensor_nbytes(t);
    t->data = zero ? lt_arena_calloc(a, nb) : lt_arena_alloc(a, nb);
    return t;
}

lt_arena_pos lt_arena_mark(const lt_arena *a) {
    lt_arena_pos m = {a->head, a->head ? a->head->used : 0, a->used};
    return m;
}

/* Blocks after the mark's keep a stale `used`: lt_arena_alloc zeroes it when it moves on to
 * them, exactly as after lt_arena_reset. */
void lt_arena_rewind(lt_arena *a, lt_arena_pos m) {
    LT_ASSERT(m.used <= a->used);
    if (m.block) {
        a->head = m.block;
        m.block->used = m.block_used;
    } else if (a->head) {
        lt_arena_block *b = a->head;
        while (b->prev) b = b->prev;
        b->used = 0;
        a->head = b;
    }
    a->used = m.used;
}
