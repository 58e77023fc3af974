/*
 * value.c — the render arena, value constructors, Python truthiness / equality / ordering, and
 * values as Python prints them: str() (what {{ x }} writes), repr() (items inside a printed list
 * or dict), and json.dumps() (transformers' tojson filter).
 *
 * Facts (CPython, read for behaviour): repr(float) is the shortest string that round-trips,
 * in positional notation when 1e-4 <= |x| < 1e16 (with ".0" when integral), otherwise
 * d[.ddd]e+XX; repr(str) quotes with ' unless the text holds ' and no ", escaping \\, the quote,
 * \t \n \r and non-printable characters (\xNN, \uNNNN); json.dumps escapes " \\ \n \r \t \b \f and
 * other control characters as \u00XX, non-ASCII as \uXXXX (surrogate pairs) only with
 * ensure_ascii, default separators ", " and ": " (",", ": " when indent is given), floats as
 * repr with NaN / Infinity / -Infinity.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------------------------- */

struct jarena_block {
    jarena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define BLOCK_MIN (64u << 10)

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jarena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > BLOCK_MIN ? n : BLOCK_MIN;
        if (a->limit && (a->used + sz > a->limit || sz > a->limit)) {
            if (a->on_limit) a->on_limit(a->ud);
            LT_ASSERT(!"arena limit without handler");
        }
        b = malloc(sizeof *b + sz);
        if (!b) {
            if (a->on_limit) a->on_limit(a->ud);
            LT_ASSERT(!"out of memory in the jinja arena");
        }
        b->size = sz;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        a->used += sz;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_free_all(jarena *a) {
    jarena_block *b = a->head;
    while (b) {
        jarena_block *nx = b->next;
        free(b);
        b = nx;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- buffers ------------------------------------------------------------------------------ */

void jb_put(jctx *c, jbuf *b, const char *s, size_t n) {
    if (n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = ja_alloc(&c->arena, nc);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
void jb_putc(jctx *c, jbuf *b, char ch) { jb_put(c, b, &ch, 1); }
void jb_puts(jctx *c, jbuf *b, const char *s) { jb_put(c, b, s, strlen(s)); }

/* ---- UTF-8 -------------------------------------------------------------------------------- */

static size_t u8len(unsigned char ch) {
    if (ch < 0x80) return 1;
    if ((ch & 0xE0) == 0xC0) return 2;
    if ((ch & 0xF0) == 0xE0) return 3;
    if ((ch & 0xF8) == 0xF0) return 4;
    return 1; /* invalid lead byte: one unit */
}

/* decode one code point at s (n > 0 bytes); *len its byte length; invalid -> the byte */
static uint32_t u8dec(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t l = u8len(u[0]);
    if (l > n) l = 1;
    for (size_t i = 1; i < l; i++)
        if ((u[i] & 0xC0) != 0x80) l = 1;
    *len = l;
    switch (l) {
    case 2: return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3: return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    case 4:
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
               ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    default: return u[0];
    }
}

size_t ju_len(const char *s, size_t n) {
    size_t k = 0, i = 0, l;
    while (i < n) {
        u8dec(s + i, n - i, &l);
        i += l;
        k++;
    }
    return k;
}

size_t ju_off(const char *s, size_t n, size_t idx) {
    size_t i = 0, l;
    while (idx > 0 && i < n) {
        u8dec(s + i, n - i, &l);
        i += l;
        idx--;
    }
    return i;
}

static bool cp_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t ju_space_at(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t l;
    uint32_t cp = u8dec(s, n, &l);
    return cp_space(cp) ? l : 0;
}

size_t ju_space_before(const char *s, size_t n) {
    if (n == 0) return 0;
    size_t st = n - 1;
    while (st > 0 && n - st < 4 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
    size_t l;
    uint32_t cp = u8dec(s + st, n - st, &l);
    if (st + l != n) return ((unsigned char)s[n - 1] < 0x80 && cp_space((unsigned char)s[n - 1])) ? 1 : 0;
    return cp_space(cp) ? l : 0;
}

/* ---- constructors ------------------------------------------------------------------------- */

jv jv_undef(const char *name) { return (jv){.t = JV_UNDEF, .u.uname = name}; }
jv jv_none(void) { return (jv){.t = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.t = JV_BOOL, .u.b = b}; }
jv jv_int(int64_t i) { return (jv){.t = JV_INT, .u.i = i}; }
jv jv_float(double f) { return (jv){.t = JV_FLOAT, .u.f = f}; }
jv jv_str_ref(const char *p, size_t n) {
    jv v = {.t = JV_STR};
    v.u.s.p = p ? p : "";
    v.u.s.n = n;
    return v;
}
jv jv_str(jctx *c, const char *p, size_t n) { return jv_str_ref(ja_strndup(&c->arena, p, n), n); }
jv jv_list(jctx *c, size_t n, bool tuple) {
    jlist *l = ja_alloc(&c->arena, sizeof *l);
    l->n = n;
    l->is_tuple = tuple;
    l->v = n ? ja_alloc(&c->arena, n * sizeof(jv)) : NULL;
    return (jv){.t = JV_LIST, .u.l = l};
}
jv jv_dict(jctx *c) {
    jdict *d = ja_alloc(&c->arena, sizeof *d);
    return (jv){.t = JV_DICT, .u.d = d};
}

jv *jd_get(const jdict *d, jv k) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], k)) return &d->v[i];
    return NULL;
}
jv *jd_get_str(const jdict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && memcmp(d->k[i].u.s.p, k, n) == 0)
            return &d->v[i];
    return NULL;
}
void jd_set(jctx *c, jdict *d, jv k, jv v) {
    jv *e = jd_get(d, k);
    if (e) {
        *e = v;
        return;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        jv *nk = ja_alloc(&c->arena, nc * sizeof *nk), *nv = ja_alloc(&c->arena, nc * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

/* ---- truthiness, equality, order ---------------------------------------------------------- */

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->is_gen || v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num(jv v) {
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b;
}
static int64_t inum(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }

/* Values can nest without bound (a loop wrapping a list in a list); recursion past this depth
 * compares as unequal (jv_eq) or fails (jv_cmp) instead of exhausting the stack. */
#define CMP_MAX_DEPTH 200

static bool eq_rec(jv a, jv b, int depth);
bool jv_eq(jv a, jv b) { return eq_rec(a, b, 0); }

static bool eq_rec(jv a, jv b, int depth) {
    if (depth > CMP_MAX_DEPTH) return false;
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return inum(a) == inum(b);
        return num(a) == num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.u.l->is_gen || b.u.l->is_gen) return a.u.l == b.u.l;
        if (a.u.l->n != b.u.l->n || a.u.l->is_tuple != b.u.l->is_tuple) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!eq_rec(a.u.l->v[i], b.u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jd_get(b.u.d, a.u.d->k[i]);
            if (!o || !eq_rec(a.u.d->v[i], *o, depth + 1)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.lp == b.u.lp;
    default: return false;
    }
}

const char *jv_type_name(jv v) {
    static const char *const N[] = {"undefined", "NoneType", "bool",  "int",      "float", "str",
                                    "list",      "dict",     "Namespace", "Macro", "function", "LoopContext"};
    if (v.t == JV_LIST && v.u.l->is_tuple) return "tuple";
    if (v.t == JV_LIST && v.u.l->is_gen) return "generator";
    return (unsigned)v.t < sizeof N / sizeof N[0] ? N[v.t] : "?";
}

static int cmp_rec(jctx *c, const jnode *at, jv a, jv b, int depth);
int jv_cmp(jctx *c, const jnode *at, jv a, jv b) { return cmp_rec(c, at, a, b, 0); }

static int cmp_rec(jctx *c, const jnode *at, jv a, jv b, int depth) {
    if (depth > CMP_MAX_DEPTH) jfail(c, at, "values nested too deeply to compare");
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return inum(a) < inum(b) ? -1 : inum(a) > inum(b);
        double x = num(a), y = num(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = memcmp(a.u.s.p, b.u.s.p, n);
        if (r) return r < 0 ? -1 : 1;
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_eq(a.u.l->v[i], b.u.l->v[i])) continue;
            return cmp_rec(c, at, a.u.l->v[i], b.u.l->v[i], depth + 1);
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
    }
    jfail(c, at, "cannot compare '%s' with '%s'", jv_type_name(a), jv_type_name(b));
}

/* ---- printing ----------------------------------------------------------------------------- */

void jv_float_repr(char *buf, size_t cap, double f) {
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX: collect digits and exponent */
    const char *q = e;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    char dig[24];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') dig[nd++] = *q;
    int ex = atoi(q + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    dig[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (ex >= -4 && ex < 16) {
        if (ex >= 0) {
            for (int i = 0; i <= ex; i++) out[o++] = i < nd ? dig[i] : '0';
            out[o++] = '.';
            if (nd > ex + 1)
                for (int i = ex + 1; i < nd; i++) out[o++] = dig[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -ex - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = dig[i];
        }
        out[o] = 0;
    } else {
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = dig[i];
        }
        out[o] = 0;
        snprintf(out + o, sizeof out - o, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
    snprintf(buf, cap, "%s", out);
}

static bool cp_printable(uint32_t cp) {
    if (cp < 0x20 || cp == 0x7F) return false;
    if (cp >= 0x80 && cp <= 0xA0) return false;
    if (cp == 0xAD || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
        (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (cp >= 0xE000 && cp <= 0xF8FF) || cp == 0xFFF9 || cp == 0xFFFA || cp == 0xFFFB)
        return false;
    return true;
}

static void repr_str(jctx *c, jbuf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    jb_putc(c, b, q);
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8dec(s + i, n - i, &l);
        char tmp[16];
        if (cp == (uint32_t)q || cp == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)cp;
            jb_put(c, b, tmp, 2);
        } else if (cp == '\n') {
            jb_put(c, b, "\\n", 2);
        } else if (cp == '\r') {
            jb_put(c, b, "\\r", 2);
        } else if (cp == '\t') {
            jb_put(c, b, "\\t", 2);
        } else if (l == 1 && cp >= 0x80) { /* invalid byte: Python would hold a surrogate */
            snprintf(tmp, sizeof tmp, "\\udc%02x", cp);
            jb_puts(c, b, tmp);
        } else if (!cp_printable(cp)) {
            if (cp < 0x100)
                snprintf(tmp, sizeof tmp, "\\x%02x", cp);
            else if (cp < 0x10000)
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            else
                snprintf(tmp, sizeof tmp, "\\U%08x", cp);
            jb_puts(c, b, tmp);
        } else {
            jb_put(c, b, s + i, l);
        }
        i += l;
    }
    jb_putc(c, b, q);
}

static void print_val(jctx *c, jbuf *b, jv v, bool repr, int depth) {
    char tmp[64];
    if (depth > 200) jfail(c, NULL, "value nested too deeply to print");
    switch (v.t) {
    case JV_UNDEF: break;
    case JV_NONE: jb_puts(c, b, "None"); break;
    case JV_BOOL: jb_puts(c, b, v.u.b ? "True" : "False"); break;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jb_puts(c, b, tmp);
        break;
    case JV_FLOAT:
        jv_float_repr(tmp, sizeof tmp, v.u.f);
        jb_puts(c, b, tmp);
        break;
    case JV_STR:
        if (repr)
            repr_str(c, b, v.u.s.p, v.u.s.n);
        else
            jb_put(c, b, v.u.s.p, v.u.s.n);
        break;
    case JV_LIST: {
        if (v.u.l->is_gen) {
            jb_puts(c, b, "<generator object>");
            break;
        }
        bool tup = v.u.l->is_tuple;
        jb_putc(c, b, tup ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_put(c, b, ", ", 2);
            print_val(c, b, v.u.l->v[i], true, depth + 1);
        }
        if (tup && v.u.l->n == 1) jb_putc(c, b, ',');
        jb_putc(c, b, tup ? ')' : ']');
        break;
    }
    case JV_NS:
        jb_puts(c, b, "<Namespace ");
        /* fall through */
    case JV_DICT:
        jb_putc(c, b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_put(c, b, ", ", 2);
            print_val(c, b, v.u.d->k[i], true, depth + 1);
            jb_put(c, b, ": ", 2);
            print_val(c, b, v.u.d->v[i], true, depth + 1);
        }
        jb_putc(c, b, '}');
        if (v.t == JV_NS) jb_putc(c, b, '>');
        break;
    case JV_MACRO:
        jb_puts(c, b, "<Macro '");
        jb_puts(c, b, v.u.m->name ? v.u.m->name : "caller");
        jb_puts(c, b, "'>");
        break;
    case JV_FUNC:
        jb_puts(c, b, "<function ");
        jb_puts(c, b, jb_global_name(v.u.fn));
        jb_putc(c, b, '>');
        break;
    case JV_LOOP: jb_puts(c, b, "<LoopContext>"); break;
    }
}

void jv_str_to(jctx *c, jbuf *b, jv v) { print_val(c, b, v, false, 0); }
void jv_repr_to(jctx *c, jbuf *b, jv v) { print_val(c, b, v, true, 0); }

jv jv_to_str(jctx *c, jv v) {
    if (v.t == JV_STR) return v;
    jbuf b = {0};
    jv_str_to(c, &b, v);
    return jv_str_ref(b.p, b.n);
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void json_str(jctx *c, jbuf *b, const char *s, size_t n, bool ascii) {
    jb_putc(c, b, '"');
    size_t i = 0, l;
    char tmp[16];
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)ch;
            jb_put(c, b, tmp, 2);
            i++;
        } else if (ch < 0x20) {
            const char *e = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
            if (e) {
                jb_puts(c, b, e);
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", ch);
                jb_puts(c, b, tmp);
            }
            i++;
        } else if (ch < 0x80 || !ascii) {
            jb_putc(c, b, (char)ch);
            i++;
        } else {
            uint32_t cp = u8dec(s + i, n - i, &l);
            if (l == 1) cp = 0xDC00 | ch; /* invalid byte: Python's surrogateescape form */
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            jb_puts(c, b, tmp);
            i += l;
        }
    }
    jb_putc(c, b, '"');
}

static void json_newline(jctx *c, jbuf *b, int indent, const char *indent_str, int level) {
    jb_putc(c, b, '\n');
    for (int i = 0; i < level; i++) {
        if (indent_str)
            jb_puts(c, b, indent_str);
        else
            for (int k = 0; k < indent; k++) jb_putc(c, b, ' ');
    }
}

static bool json_key(jctx *c, jbuf *b, jv k, bool ascii) {
    char tmp[64];
    switch (k.t) {
    case JV_STR: json_str(c, b, k.u.s.p, k.u.s.n, ascii); return true;
    case JV_INT: snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)k.u.i); break;
    case JV_BOOL: snprintf(tmp, sizeof tmp, "\"%s\"", k.u.b ? "true" : "false"); break;
    case JV_NONE: snprintf(tmp, sizeof tmp, "\"null\""); break;
    case JV_FLOAT: {
        char f[40];
        jv_float_repr(f, sizeof f, k.u.f);
        snprintf(tmp, sizeof tmp, "\"%s\"", f);
        break;
    }
    default: return false;
    }
    jb_puts(c, b, tmp);
    return true;
}

bool jv_json_to(jctx *c, jbuf *b, jv v, bool ascii, int indent, const char *indent_str,
                const char *item_sep, const char *key_sep, bool sort_keys, int level) {
    char tmp[64];
    bool pretty = indent >= 0 || indent_str;
    if (!item_sep) item_sep = pretty ? "," : ", ";
    if (!key_sep) key_sep = ": ";
    if (level > 200) jfail(c, NULL, "value nested too deeply for tojson");
    switch (v.t) {
    case JV_NONE: jb_puts(c, b, "null"); return true;
    case JV_BOOL: jb_puts(c, b, v.u.b ? "true" : "false"); return true;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jb_puts(c, b, tmp);
        return true;
    case JV_FLOAT:
        if (isnan(v.u.f))
            jb_puts(c, b, "NaN");
        else if (isinf(v.u.f))
            jb_puts(c, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else {
            jv_float_repr(tmp, sizeof tmp, v.u.f);
            jb_puts(c, b, tmp);
        }
        return true;
    case JV_STR: json_str(c, b, v.u.s.p, v.u.s.n, ascii); return true;
    case JV_LIST:
        if (v.u.l->is_gen) return false;
        if (v.u.l->n == 0) {
            jb_puts(c, b, "[]");
            return true;
        }
        jb_putc(c, b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_puts(c, b, item_sep);
            if (pretty) json_newline(c, b, indent, indent_str, level + 1);
            if (!jv_json_to(c, b, v.u.l->v[i], ascii, indent, indent_str, item_sep, key_sep,
                            sort_keys, level + 1))
                return false;
        }
        if (pretty) json_newline(c, b, indent, indent_str, level);
        jb_putc(c, b, ']');
        return true;
    case JV_DICT: {
        jdict *d = v.u.d;
        if (d->n == 0) {
            jb_puts(c, b, "{}");
            return true;
        }
        size_t *ord = ja_alloc(&c->arena, d->n * sizeof *ord);
        for (size_t i = 0; i < d->n; i++) ord[i] = i;
        if (sort_keys) {
            const jv **ks = ja_alloc(&c->arena, d->n * sizeof *ks);
            for (size_t i = 0; i < d->n; i++) ks[i] = &d->k[i];
            /* insertion sort: stable, like Python's sorted() */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && jv_cmp(c, NULL, *ks[j - 1], *ks[j]) > 0; j--) {
                    const jv *t = ks[j];
                    ks[j] = ks[j - 1];
                    ks[j - 1] = t;
                }
            for (size_t i = 0; i < d->n; i++) ord[i] = (size_t)(ks[i] - d->k);
        }
        jb_putc(c, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jb_puts(c, b, item_sep);
            if (pretty) json_newline(c, b, indent, indent_str, level + 1);
            if (!json_key(c, b, d->k[ord[i]], ascii)) return false;
            jb_puts(c, b, key_sep);
            if (!jv_json_to(c, b, d->v[ord[i]], ascii, indent, indent_str, item_sep, key_sep,
                            sort_keys, level + 1))
                return false;
        }
        if (pretty) json_newline(c, b, indent, indent_str, level);
        jb_putc(c, b, '}');
        return true;
    }
    default: return false;
    }
}

jv jv_from_json(jctx *c, const json_t *j, int depth) {
    if (depth > 200) jfail(c, NULL, "input JSON nested deeper than 200 levels");
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_str_ref(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list(c, n, false);
        for (size_t i = 0; i < n; i++) l.u.l->v[i] = jv_from_json(c, json_array_get(j, i), depth + 1);
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict(c);
        const char *k;
        json_t *x;
        jdict *dd = d.u.d;
        dd->cap = json_object_size(j);
        if (dd->cap) {
            dd->k = ja_alloc(&c->arena, dd->cap * sizeof(jv));
            dd->v = ja_alloc(&c->arena, dd->cap * sizeof(jv));
        }
        json_object_foreach((json_t *)j, k, x) { /* keys are unique: append in order */
            if (dd->n == dd->cap) break;
            dd->k[dd->n] = jv_str_ref(k, strlen(k));
            dd->v[dd->n++] = jv_from_json(c, x, depth + 1);
        }
        return d;
    }
    }
    return jv_none();
}
