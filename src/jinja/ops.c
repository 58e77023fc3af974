/*
 * ops.c — what the template language does to values (jinja2 3.1 and Python semantics, read for
 * behaviour): attribute and item access, iteration, `in`, Python slices, and the arithmetic and
 * comparison operators. eval.c evaluates the operands; these fail with jfail naming the node.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- access ------------------------------------------------------------------------------- */

_Noreturn void je_fail_undef(jctx *c, const jnode *at, jv v, const char *what) {
    if (v.u.uname)
        jfail(c, at, "'%s' is undefined (%s)", v.u.uname, what);
    jfail(c, at, "undefined value (%s)", what);
}

jv je_getattr(jctx *c, const jnode *at, jv obj, const char *name, size_t n) {
    switch (obj.t) {
    case JV_UNDEF: je_fail_undef(c, at, obj, "attribute access");
    case JV_DICT:
    case JV_NS: {
        jv *v = jd_get_str(obj.u.d, name, n);
        return v ? *v : jv_undef(name);
    }
    case JV_LOOP: {
        jloop *lp = obj.u.lp;
        size_t len = lp->items->n, i = lp->idx;
        if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
        if (!strcmp(name, "index0")) return jv_int((int64_t)i);
        if (!strcmp(name, "revindex")) return jv_int((int64_t)(len - i));
        if (!strcmp(name, "revindex0")) return jv_int((int64_t)(len - i - 1));
        if (!strcmp(name, "first")) return jv_bool(i == 0);
        if (!strcmp(name, "last")) return jv_bool(i + 1 == len);
        if (!strcmp(name, "length")) return jv_int((int64_t)len);
        if (!strcmp(name, "depth")) return jv_int(lp->depth);
        if (!strcmp(name, "depth0")) return jv_int(lp->depth - 1);
        if (!strcmp(name, "previtem")) return i > 0 ? lp->items->v[i - 1] : jv_undef("previtem");
        if (!strcmp(name, "nextitem")) return i + 1 < len ? lp->items->v[i + 1] : jv_undef("nextitem");
        return jv_undef(name);
    }
    default: return jv_undef(name);
    }
}

static int64_t norm_index(int64_t i, size_t n) { return i < 0 ? i + (int64_t)n : i; }

jv je_getitem(jctx *c, const jnode *at, jv obj, jv key) {
    switch (obj.t) {
    case JV_UNDEF: je_fail_undef(c, at, obj, "item access");
    case JV_DICT:
    case JV_NS: {
        jv *v = jd_get(obj.u.d, key);
        if (v) return *v;
        return key.t == JV_STR ? jv_undef(ja_strndup(&c->arena, key.u.s.p, key.u.s.n)) : jv_undef(NULL);
    }
    case JV_LIST:
        if (obj.u.l->is_gen) jfail(c, at, "'generator' object is not subscriptable");
        if (key.t == JV_INT || key.t == JV_BOOL) {
            int64_t i = norm_index(key.t == JV_INT ? key.u.i : key.u.b, obj.u.l->n);
            if (i >= 0 && (size_t)i < obj.u.l->n) return obj.u.l->v[i];
        }
        return jv_undef(NULL);
    case JV_STR:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            size_t len = ju_len(obj.u.s.p, obj.u.s.n);
            int64_t i = norm_index(key.t == JV_INT ? key.u.i : key.u.b, len);
            if (i >= 0 && (size_t)i < len) {
                size_t a = ju_off(obj.u.s.p, obj.u.s.n, (size_t)i);
                size_t b = ju_off(obj.u.s.p, obj.u.s.n, (size_t)i + 1);
                return jv_str_ref(obj.u.s.p + a, b - a);
            }
        }
        return jv_undef(NULL);
    case JV_LOOP:
        if (key.t == JV_STR) return je_getattr(c, at, obj, ja_strndup(&c->arena, key.u.s.p, key.u.s.n), key.u.s.n);
        return jv_undef(NULL);
    default: return jv_undef(NULL);
    }
}

jlist *je_iter(jctx *c, const jnode *at, jv v) {
    switch (v.t) {
    case JV_UNDEF: return jv_list(c, 0, false).u.l;
    case JV_LIST: return v.u.l;
    case JV_DICT:
    case JV_NS: {
        jv l = jv_list(c, v.u.d->n, false);
        for (size_t i = 0; i < v.u.d->n; i++) l.u.l->v[i] = v.u.d->k[i];
        return l.u.l;
    }
    case JV_STR: {
        size_t n = ju_len(v.u.s.p, v.u.s.n), off = 0;
        jv l = jv_list(c, n, false);
        for (size_t i = 0; i < n; i++) {
            size_t e = ju_off(v.u.s.p + off, v.u.s.n - off, 1);
            l.u.l->v[i] = jv_str_ref(v.u.s.p + off, e);
            off += e;
        }
        return l.u.l;
    }
    default: jfail(c, at, "'%s' object is not iterable", jv_type_name(v));
    }
}

bool je_contains(jctx *c, const jnode *at, jv hay, jv needle) {
    switch (hay.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (needle.t != JV_STR) jfail(c, at, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        if (needle.u.s.n == 0) return true;
        return memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_eq(hay.u.l->v[i], needle)) return true;
        return false;
    case JV_DICT:
    case JV_NS: return jd_get(hay.u.d, needle) != NULL;
    default: jfail(c, at, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

/* Python slice semantics on n items: start/stop/step may be absent (has_* false). */
static size_t slice_idx(size_t n, int64_t step, bool has_start, int64_t start, bool has_stop,
                        int64_t stop, int64_t *out_start) {
    int64_t len = (int64_t)n, s, e;
    if (step > 0) {
        s = !has_start ? 0 : start < 0 ? (start + len < 0 ? 0 : start + len) : (start > len ? len : start);
        e = !has_stop ? len : stop < 0 ? (stop + len < 0 ? 0 : stop + len) : (stop > len ? len : stop);
        *out_start = s;
        return e > s ? (size_t)((e - s + step - 1) / step) : 0;
    }
    s = !has_start ? len - 1 : start < 0 ? (start + len < 0 ? -1 : start + len) : (start >= len ? len - 1 : start);
    e = !has_stop ? -1 : stop < 0 ? (stop + len < 0 ? -1 : stop + len) : (stop >= len ? len - 1 : stop);
    *out_start = s;
    return s > e ? (size_t)((s - e - step - 1) / (-step)) : 0;
}

jv je_slice(jctx *c, const jnode *n, jv obj, bool hs, int64_t start, bool he, int64_t stop,
            int64_t step) {
    if (step == 0) jfail(c, n, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) je_fail_undef(c, n, obj, "slicing");
    if (obj.t == JV_LIST) {
        if (obj.u.l->is_gen) jfail(c, n, "'generator' object is not subscriptable");
        int64_t s;
        size_t cnt = slice_idx(obj.u.l->n, step, hs, start, he, stop, &s);
        jv r = jv_list(c, cnt, obj.u.l->is_tuple);
        for (size_t i = 0; i < cnt; i++) r.u.l->v[i] = obj.u.l->v[s + (int64_t)i * step];
        return r;
    }
    if (obj.t == JV_STR) {
        jlist *cp = je_iter(c, n, obj);
        int64_t s;
        size_t cnt = slice_idx(cp->n, step, hs, start, he, stop, &s);
        jbuf b = {0};
        for (size_t i = 0; i < cnt; i++) {
            jv ch = cp->v[s + (int64_t)i * step];
            jb_put(c, &b, ch.u.s.p, ch.u.s.n);
        }
        return jv_str_ref(b.p ? b.p : "", b.n);
    }
    jfail(c, n, "'%s' object is not subscriptable", jv_type_name(obj));
}

/* ---- arithmetic ---------------------------------------------------------------------------- */

bool je_numeric(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double fnum(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b; }
int64_t je_inum(jv v) { return v.t == JV_INT ? v.u.i : v.t == JV_BOOL ? (int64_t)v.u.b : 0; }

static jv repeat(jctx *c, const jnode *at, jv seq, int64_t k) {
    if (k < 0) k = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)k > (c->lim.max_memory_bytes / seq.u.s.n))
            jfail(c, at, "memory limit (%zu bytes) exceeded", c->lim.max_memory_bytes);
        size_t total = seq.u.s.n * (size_t)k;
        char *p = ja_alloc(&c->arena, total + 1);
        for (int64_t i = 0; i < k; i++) memcpy(p + (size_t)i * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        return jv_str_ref(p, total);
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)k > c->lim.max_memory_bytes / (n * sizeof(jv)))
        jfail(c, at, "memory limit (%zu bytes) exceeded", c->lim.max_memory_bytes);
    jv r = jv_list(c, n * (size_t)k, seq.u.l->is_tuple);
    for (int64_t i = 0; i < k; i++) memcpy(r.u.l->v + (size_t)i * n, seq.u.l->v, n * sizeof(jv));
    return r;
}

jv je_binop(jctx *c, const jnode *n, const char *op, jv a, jv b) {
    if (op[0] == '~') {
        jbuf buf = {0};
        jv_str_to(c, &buf, a);
        jv_str_to(c, &buf, b);
        return jv_str_ref(buf.p ? buf.p : "", buf.n);
    }
    if (a.t == JV_UNDEF) je_fail_undef(c, n, a, op);
    if (b.t == JV_UNDEF) je_fail_undef(c, n, b, op);
    bool ints = (a.t == JV_INT || a.t == JV_BOOL) && (b.t == JV_INT || b.t == JV_BOOL);
    if (je_numeric(a) && je_numeric(b)) {
        int64_t x = je_inum(a), y = je_inum(b), r; /* used only when ints */
        double fx = fnum(a), fy = fnum(b);
        switch (op[0]) {
        case '+':
            if (ints) {
                if (__builtin_add_overflow(x, y, &r)) break;
                return jv_int(r);
            }
            return jv_float(fx + fy);
        case '-':
            if (ints) {
                if (__builtin_sub_overflow(x, y, &r)) break;
                return jv_int(r);
            }
            return jv_float(fx - fy);
        case '*':
            if (op[1] == '*') {
                if (ints && y >= 0) { /* exponentiation by squaring, overflow-checked */
                    int64_t acc = 1, base = x;
                    uint64_t e = (uint64_t)y;
                    bool ovf = false;
                    while (e && !ovf) {
                        if (e & 1) ovf |= __builtin_mul_overflow(acc, base, &acc);
                        e >>= 1;
                        if (e) ovf |= __builtin_mul_overflow(base, base, &base);
                    }
                    if (ovf) break;
                    return jv_int(acc);
                }
                return jv_float(pow(fx, fy));
            }
            if (ints) {
                if (__builtin_mul_overflow(x, y, &r)) break;
                return jv_int(r);
            }
            return jv_float(fx * fy);
        case '/':
            if (op[1] == '/') {
                if (ints) {
                    if (y == 0) jfail(c, n, "integer division or modulo by zero");
                    if (x == INT64_MIN && y == -1) break;
                    int64_t q = x / y;
                    if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
                    return jv_int(q);
                }
                if (fy == 0) jfail(c, n, "float floor division by zero");
                return jv_float(floor(fx / fy));
            }
            if (fy == 0) jfail(c, n, "division by zero");
            return jv_float(fx / fy);
        case '%':
            if (ints) {
                if (y == 0) jfail(c, n, "integer division or modulo by zero");
                if (y == -1) return jv_int(0);
                int64_t m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return jv_int(m);
            }
            if (fy == 0) jfail(c, n, "float modulo");
            {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                return jv_float(m);
            }
        }
        jfail(c, n, "integer overflow in '%s'", op);
    }
    if (op[0] == '+' && a.t == JV_STR && b.t == JV_STR) {
        if (a.safe != b.safe) { /* Markup + str escapes the str (markupsafe) */
            if (!a.safe) a = jv_html_escape(c, a);
            if (!b.safe) b = jv_html_escape(c, b);
        }
        bool safe = a.safe || b.safe;
        char *p = ja_alloc(&c->arena, a.u.s.n + b.u.s.n + 1);
        memcpy(p, a.u.s.p, a.u.s.n);
        memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        jv r = jv_str_ref(p, a.u.s.n + b.u.s.n);
        r.safe = safe;
        return r;
    }
    if (op[0] == '+' && a.t == JV_LIST && b.t == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple) {
        jv r = jv_list(c, a.u.l->n + b.u.l->n, a.u.l->is_tuple);
        if (a.u.l->n) memcpy(r.u.l->v, a.u.l->v, a.u.l->n * sizeof(jv));
        if (b.u.l->n) memcpy(r.u.l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
        return r;
    }
    if (op[0] == '*' && op[1] == 0) {
        if ((a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL)) return repeat(c, n, a, je_inum(b));
        if ((b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL)) return repeat(c, n, b, je_inum(a));
    }
    jfail(c, n, "unsupported operand types for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}
