/*
 * methods.c — methods callable on values (Python str / dict / list methods that the immutable
 * sandbox allows, loop.cycle) and the global functions transformers' environment provides:
 * range (at most 100000 items, as jinja2's sandbox), namespace, dict, raise_exception,
 * strftime_now. Mutating methods (list.append/pop/..., dict.update/pop/...) are refused with
 * the error jinja2's ImmutableSandboxedEnvironment gives. Python semantics from CPython's
 * str methods (read for behaviour): split() without a separator splits on whitespace runs and
 * drops empty ends; with one it keeps empty fields; maxsplit counts splits.
 */
#include "jinja_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>


static jv need_str(jctx *c, const jnode *n, const jv *v, const char *what) {
    if (!v || v->t != JV_STR) jfail(c, n, "%s must be a string", what);
    return *v;
}

/* list builder */
typedef struct {
    jv *v;
    size_t n, cap;
} jvec;
static void vpush(jctx *c, jvec *x, jv v) {
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 8;
        jv *nv = ja_alloc(&c->arena, nc * sizeof *nv);
        if (x->n) memcpy(nv, x->v, x->n * sizeof *nv);
        x->v = nv;
        x->cap = nc;
    }
    x->v[x->n++] = v;
}
static jv vlist(jctx *c, jvec *x) {
    jv l = jv_list(c, 0, false);
    l.u.l->v = x->v;
    l.u.l->n = x->n;
    return l;
}

static jv str_split(jctx *c, const jnode *n, jv s, const jv *sep, int64_t maxsplit, bool right) {
    jvec out = {0};
    const char *p = s.u.s.p;
    size_t len = s.u.s.n;
    if (!sep || sep->t == JV_NONE) {
        /* whitespace runs; from the left (split) or the right (rsplit) */
        size_t k;
        if (!right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                while (i < len && (k = ju_space_at(p + i, len - i)) > 0) i += k;
                if (i >= len) break;
                if (maxsplit >= 0 && done >= maxsplit) {
                    size_t e = len;
                    while (e > i && (k = ju_space_before(p + i, e - i)) > 0) e -= k;
                    vpush(c, &out, jv_str_ref(p + i, e - i));
                    break;
                }
                size_t st = i;
                while (i < len && ju_space_at(p + i, len - i) == 0) i += ju_off(p + i, len - i, 1);
                vpush(c, &out, jv_str_ref(p + st, i - st));
                done++;
            }
            return vlist(c, &out);
        }
        jvec rev = {0};
        size_t e = len;
        int64_t done = 0;
        for (;;) {
            while (e > 0 && (k = ju_space_before(p, e)) > 0) e -= k;
            if (e == 0) break;
            if (maxsplit >= 0 && done >= maxsplit) {
                size_t b = 0;
                while (b < e && (k = ju_space_at(p + b, e - b)) > 0) b += k;
                vpush(c, &rev, jv_str_ref(p + b, e - b));
                break;
            }
            size_t st = e;
            while (st > 0 && ju_space_before(p, st) == 0) {
                st--;
                while (st > 0 && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            }
            vpush(c, &rev, jv_str_ref(p + st, e - st));
            e = st;
            done++;
        }
        for (size_t i = 0; i < rev.n; i++) vpush(c, &out, rev.v[rev.n - 1 - i]);
        return vlist(c, &out);
    }
    jv sp = need_str(c, n, sep, "the separator");
    if (sp.u.s.n == 0) jfail(c, n, "empty separator");
    if (!right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || done < maxsplit) ? memmem(p + i, len - i, sp.u.s.p, sp.u.s.n) : NULL;
            if (!f) {
                vpush(c, &out, jv_str_ref(p + i, len - i));
                break;
            }
            vpush(c, &out, jv_str_ref(p + i, (size_t)(f - p) - i));
            i = (size_t)(f - p) + sp.u.s.n;
            done++;
        }
        return vlist(c, &out);
    }
    jvec rev = {0};
    size_t e = len;
    int64_t done = 0;
    for (;;) {
        const char *f = NULL;
        if (maxsplit < 0 || done < maxsplit)
            for (size_t q = e >= sp.u.s.n ? e - sp.u.s.n + 1 : 0; q-- > 0;)
                if (!memcmp(p + q, sp.u.s.p, sp.u.s.n)) {
                    f = p + q;
                    break;
                }
        if (!f) {
            vpush(c, &rev, jv_str_ref(p, e));
            break;
        }
        size_t after = (size_t)(f - p) + sp.u.s.n;
        vpush(c, &rev, jv_str_ref(p + after, e - after));
        e = (size_t)(f - p);
        done++;
    }
    for (size_t i = 0; i < rev.n; i++) vpush(c, &out, rev.v[rev.n - 1 - i]);
    return vlist(c, &out);
}

static bool affix(jctx *c, const jnode *n, jv s, const jv *x, bool end) {
    if (!x) jfail(c, n, "%s needs an argument", end ? "endswith" : "startswith");
    if (x->t == JV_LIST) {
        for (size_t i = 0; i < x->u.l->n; i++)
            if (affix(c, n, s, &x->u.l->v[i], end)) return true;
        return false;
    }
    jv a = need_str(c, n, x, end ? "endswith's argument" : "startswith's argument");
    if (a.u.s.n > s.u.s.n) return false;
    return !memcmp(s.u.s.p + (end ? s.u.s.n - a.u.s.n : 0), a.u.s.p, a.u.s.n);
}

/* str.format with {} / {0} / {name} fields and {{ }} escapes (no format specs). */
static jv str_format(jctx *c, const jnode *n, jv s, jv *args, size_t nargs, const char **kwn, jv *kwv, size_t nkw) {
    jbuf b = {0};
    size_t auto_i = 0;
    const char *p = s.u.s.p, *e = p + s.u.s.n;
    while (p < e) {
        if (*p == '{' && p + 1 < e && p[1] == '{') {
            jb_putc(c, &b, '{');
            p += 2;
        } else if (*p == '}' && p + 1 < e && p[1] == '}') {
            jb_putc(c, &b, '}');
            p += 2;
        } else if (*p == '{') {
            const char *q = memchr(p, '}', (size_t)(e - p));
            if (!q) jfail(c, n, "format: single '{' encountered in format string");
            size_t fl = (size_t)(q - p - 1);
            const char *f = p + 1;
            if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '.', fl) || memchr(f, '[', fl))
                jfail(c, n, "format: format specs and field attributes are not supported");
            jv val;
            if (fl == 0) {
                if (auto_i >= nargs) jfail(c, n, "format: replacement index %zu out of range", auto_i);
                val = args[auto_i++];
            } else if (f[0] >= '0' && f[0] <= '9') {
                size_t idx = (size_t)strtoul(f, NULL, 10);
                if (idx >= nargs) jfail(c, n, "format: replacement index %zu out of range", idx);
                val = args[idx];
            } else {
                size_t k = 0;
                while (k < nkw && !(strlen(kwn[k]) == fl && !memcmp(kwn[k], f, fl))) k++;
                if (k == nkw) jfail(c, n, "format: missing keyword '%.*s'", (int)fl, f);
                val = kwv[k];
            }
            jv_str_to(c, &b, val);
            p = q + 1;
        } else if (*p == '}') {
            jfail(c, n, "format: single '}' encountered in format string");
        } else {
            jb_putc(c, &b, *p++);
        }
    }
    return jv_str_ref(b.p ? b.p : "", b.n);
}

static int64_t find_sub(jv s, jv sub, bool last) {
    if (sub.u.s.n > s.u.s.n) return -1;
    const char *f = NULL;
    if (!last) f = sub.u.s.n ? memmem(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n) : s.u.s.p;
    else
        for (size_t q = s.u.s.n - sub.u.s.n + 1; q-- > 0;)
            if (!memcmp(s.u.s.p + q, sub.u.s.p, sub.u.s.n)) {
                f = s.u.s.p + q;
                break;
            }
    return f ? (int64_t)ju_len(s.u.s.p, (size_t)(f - s.u.s.p)) : -1;
}

static jv str_method(jctx *c, const jnode *n, jv s, const char *m, jv *args, size_t nargs,
                     const char **kwn, jv *kwv, size_t nkw, bool *handled) {
    *handled = true;
    if (!strcmp(m, "strip")) return jstr_strip(c, n, s, JB_ARG(0, "chars"), 3);
    if (!strcmp(m, "lstrip")) return jstr_strip(c, n, s, JB_ARG(0, "chars"), 1);
    if (!strcmp(m, "rstrip")) return jstr_strip(c, n, s, JB_ARG(0, "chars"), 2);
    if (!strcmp(m, "upper")) return jstr_map(c, s, 1);
    if (!strcmp(m, "lower")) return jstr_map(c, s, 0);
    if (!strcmp(m, "capitalize")) return jstr_map(c, s, 2);
    if (!strcmp(m, "title")) { /* Python str.title: a letter after a non-letter starts a word */
        char *p = ja_alloc(&c->arena, s.u.s.n + 1);
        bool prev_cased = false;
        for (size_t i = 0; i < s.u.s.n; i++) {
            char ch = s.u.s.p[i];
            bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
            p[i] = letter ? (prev_cased ? (ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch)
                                        : (ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch))
                          : ch;
            prev_cased = letter;
        }
        return jv_str_ref(p, s.u.s.n);
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        jv *mx = JB_ARG(1, "maxsplit");
        return str_split(c, n, s, JB_ARG(0, "sep"), mx && mx->t == JV_INT ? mx->u.i : -1, m[0] == 'r');
    }
    if (!strcmp(m, "splitlines")) {
        jvec out = {0};
        size_t i = 0, st = 0;
        while (i < s.u.s.n) {
            char ch = s.u.s.p[i];
            if (ch == '\n' || ch == '\r') {
                vpush(c, &out, jv_str_ref(s.u.s.p + st, i - st));
                i += (ch == '\r' && i + 1 < s.u.s.n && s.u.s.p[i + 1] == '\n') ? 2 : 1;
                st = i;
            } else {
                i++;
            }
        }
        if (st < s.u.s.n) vpush(c, &out, jv_str_ref(s.u.s.p + st, s.u.s.n - st));
        return vlist(c, &out);
    }
    if (!strcmp(m, "startswith")) return jv_bool(affix(c, n, s, JB_ARG(0, "prefix"), false));
    if (!strcmp(m, "endswith")) return jv_bool(affix(c, n, s, JB_ARG(0, "suffix"), true));
    if (!strcmp(m, "replace")) {
        jv *cnt = JB_ARG(2, "count");
        return jstr_replace(c, s, need_str(c, n, JB_ARG(0, "old"), "replace's old"),
                            need_str(c, n, JB_ARG(1, "new"), "replace's new"), cnt && cnt->t == JV_INT ? cnt->u.i : -1);
    }
    if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex")) {
        int64_t r = find_sub(s, need_str(c, n, JB_ARG(0, "sub"), "the substring"), m[0] == 'r');
        if (r < 0 && strstr(m, "index")) jfail(c, n, "substring not found");
        return jv_int(r);
    }
    if (!strcmp(m, "count")) {
        jv sub = need_str(c, n, JB_ARG(0, "sub"), "the substring");
        if (!sub.u.s.n) return jv_int((int64_t)ju_len(s.u.s.p, s.u.s.n) + 1);
        int64_t k = 0;
        for (size_t i = 0; i + sub.u.s.n <= s.u.s.n;) {
            const char *f = memmem(s.u.s.p + i, s.u.s.n - i, sub.u.s.p, sub.u.s.n);
            if (!f) break;
            k++;
            i = (size_t)(f - s.u.s.p) + sub.u.s.n;
        }
        return jv_int(k);
    }
    if (!strcmp(m, "join")) {
        jv *it = JB_ARG(0, "iterable");
        if (!it) jfail(c, n, "join needs an iterable");
        jlist *l = je_iter(c, n, *it);
        jbuf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].t != JV_STR) jfail(c, n, "sequence item %zu: expected str instance, %s found", i, jv_type_name(l->v[i]));
            if (i) jb_put(c, &b, s.u.s.p, s.u.s.n);
            jb_put(c, &b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        return jv_str_ref(b.p ? b.p : "", b.n);
    }
    if (!strcmp(m, "format")) return str_format(c, n, s, args, nargs, kwn, kwv, nkw);
    if (!strcmp(m, "isdigit") || !strcmp(m, "isalpha") || !strcmp(m, "isalnum") || !strcmp(m, "isspace") ||
        !strcmp(m, "islower") || !strcmp(m, "isupper")) {
        if (!s.u.s.n) return jv_bool(false);
        bool lo = false, up = false;
        for (size_t i = 0; i < s.u.s.n; i++) {
            unsigned char ch = (unsigned char)s.u.s.p[i];
            bool d = ch >= '0' && ch <= '9', l = ch >= 'a' && ch <= 'z', u = ch >= 'A' && ch <= 'Z';
            bool sp = ch == ' ' || (ch >= '\t' && ch <= '\r');
            lo |= l;
            up |= u;
            if (!strcmp(m, "isdigit") && !d) return jv_bool(false);
            if (!strcmp(m, "isalpha") && !(l || u)) return jv_bool(false);
            if (!strcmp(m, "isalnum") && !(l || u || d)) return jv_bool(false);
            if (!strcmp(m, "isspace") && !sp) return jv_bool(false);
        }
        if (!strcmp(m, "islower")) return jv_bool(lo && !up);
        if (!strcmp(m, "isupper")) return jv_bool(up && !lo);
        return jv_bool(true);
    }
    *handled = false;
    return jv_undef(NULL);
}

jv jb_method(jctx *c, const jnode *n, jv obj, const char *m, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw, bool *handled) {
    *handled = true;
    switch (obj.t) {
    case JV_STR: return str_method(c, n, obj, m, args, nargs, kwn, kwv, nkw, handled);
    case JV_DICT:
    case JV_NS:
        if (!strcmp(m, "get")) {
            jv *k = JB_ARG(0, "key"), *d = JB_ARG(1, "default");
            if (!k) jfail(c, n, "get needs a key");
            jv *v = jd_get(obj.u.d, *k);
            return v ? *v : d ? *d : jv_none();
        }
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            jv r = jv_list(c, obj.u.d->n, false);
            for (size_t i = 0; i < obj.u.d->n; i++) {
                if (m[0] == 'k') r.u.l->v[i] = obj.u.d->k[i];
                else if (m[0] == 'v') r.u.l->v[i] = obj.u.d->v[i];
                else {
                    jv t = jv_list(c, 2, true);
                    t.u.l->v[0] = obj.u.d->k[i];
                    t.u.l->v[1] = obj.u.d->v[i];
                    r.u.l->v[i] = t;
                }
            }
            return r;
        }
        if (!strcmp(m, "copy") && obj.t == JV_DICT) {
            jv d = jv_dict(c);
            for (size_t i = 0; i < obj.u.d->n; i++) jd_set(c, d.u.d, obj.u.d->k[i], obj.u.d->v[i]);
            return d;
        }
        if (!strcmp(m, "update") || !strcmp(m, "pop") || !strcmp(m, "popitem") || !strcmp(m, "setdefault") ||
            !strcmp(m, "clear"))
            jfail(c, n, "access to attribute '%s' of 'dict' object is unsafe (templates cannot modify data)", m);
        break;
    case JV_LIST:
        if (!strcmp(m, "index") || !strcmp(m, "count")) {
            jv *x = JB_ARG(0, "value");
            if (!x) jfail(c, n, "%s needs an argument", m);
            int64_t k = 0;
            for (size_t i = 0; i < obj.u.l->n; i++)
                if (jv_eq(obj.u.l->v[i], *x)) {
                    if (m[0] == 'i') return jv_int((int64_t)i);
                    k++;
                }
            if (m[0] == 'i') jfail(c, n, "value is not in the list");
            return jv_int(k);
        }
        if (!strcmp(m, "append") || !strcmp(m, "extend") || !strcmp(m, "insert") || !strcmp(m, "pop") ||
            !strcmp(m, "remove") || !strcmp(m, "sort") || !strcmp(m, "reverse") || !strcmp(m, "clear"))
            jfail(c, n, "access to attribute '%s' of '%s' object is unsafe (templates cannot modify data)", m,
                  jv_type_name(obj));
        break;
    case JV_LOOP:
        if (!strcmp(m, "cycle")) {
            if (!nargs) jfail(c, n, "no items for cycling given");
            return args[obj.u.lp->idx % nargs];
        }
        break;
    default: break;
    }
    *handled = false;
    return jv_undef(NULL);
}

/* ---- globals ------------------------------------------------------------------------------ */

static const char *const GLOBALS[] = {"range", "namespace", "dict", "raise_exception", "strftime_now", NULL};

int jb_global(const char *name) {
    for (int i = 0; GLOBALS[i]; i++)
        if (!strcmp(GLOBALS[i], name)) return i;
    return -1;
}
const char *jb_global_name(int fn) { return fn >= 0 && fn < 5 ? GLOBALS[fn] : "?"; }

static void dict_fill(jctx *c, const jnode *n, jdict *d, jv *args, size_t nargs, const char **kwn, jv *kwv,
                      size_t nkw, bool ns) {
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].t == JV_DICT || args[i].t == JV_NS) {
            for (size_t k = 0; k < args[i].u.d->n; k++) jd_set(c, d, args[i].u.d->k[k], args[i].u.d->v[k]);
        } else if (args[i].t == JV_LIST) {
            for (size_t k = 0; k < args[i].u.l->n; k++) {
                jv p = args[i].u.l->v[k];
                if (p.t != JV_LIST || p.u.l->n != 2) jfail(c, n, "dictionary update sequence element has the wrong length");
                jd_set(c, d, p.u.l->v[0], p.u.l->v[1]);
            }
        } else {
            jfail(c, n, "'%s' object is not a mapping", jv_type_name(args[i]));
        }
    }
    for (size_t i = 0; i < nkw; i++) jd_set(c, d, jv_str_ref(kwn[i], strlen(kwn[i])), kwv[i]);
    if (ns)
        for (size_t i = 0; i < d->n; i++)
            if (d->k[i].t == JV_STR && d->k[i].u.s.n && d->k[i].u.s.p[0] == '_')
                jfail(c, n, "namespace attributes cannot start with '_'");
}

jv jb_call_global(jctx *c, const jnode *n, int fn, jv *args, size_t nargs, const char **kwn,
                  jv *kwv, size_t nkw) {
    switch (fn) {
    case 0: { /* range */
        int64_t a[3] = {0, 0, 1};
        if (nargs < 1 || nargs > 3) jfail(c, n, "range expects 1 to 3 arguments");
        for (size_t i = 0; i < nargs; i++) {
            if (args[i].t != JV_INT && args[i].t != JV_BOOL) jfail(c, n, "range: '%s' object cannot be interpreted as an integer", jv_type_name(args[i]));
            a[nargs == 1 ? 1 : i] = args[i].t == JV_INT ? args[i].u.i : args[i].u.b;
        }
        if (a[2] == 0) jfail(c, n, "range() arg 3 must not be zero");
        uint64_t cnt = 0;
        if (a[2] > 0 && a[0] < a[1]) cnt = ((uint64_t)a[1] - (uint64_t)a[0] - 1) / (uint64_t)a[2] + 1;
        if (a[2] < 0 && a[0] > a[1]) cnt = ((uint64_t)a[0] - (uint64_t)a[1] - 1) / (0 - (uint64_t)a[2]) + 1;
        if (cnt > 100000) jfail(c, n, "range too big (more than 100000 items; the sandbox's limit)");
        jv l = jv_list(c, cnt, false);
        for (size_t i = 0; i < cnt; i++) l.u.l->v[i] = jv_int(a[0] + (int64_t)i * a[2]);
        return l;
    }
    case 1: { /* namespace */
        jv d = jv_dict(c);
        dict_fill(c, n, d.u.d, args, nargs, kwn, kwv, nkw, true);
        d.t = JV_NS;
        return d;
    }
    case 2: {
        jv d = jv_dict(c);
        dict_fill(c, n, d.u.d, args, nargs, kwn, kwv, nkw, false);
        return d;
    }
    case 3: {
        jbuf b = {0};
        if (nargs) jv_str_to(c, &b, args[0]);
        jfail(c, n, "raise_exception: %.*s", (int)(b.n > 1200 ? 1200 : b.n), b.p ? b.p : "");
    }
    case 4: {
        if (!nargs || args[0].t != JV_STR) jfail(c, n, "strftime_now needs a format string");
        char fmt[256], out[512];
        size_t l = args[0].u.s.n < sizeof fmt - 1 ? args[0].u.s.n : sizeof fmt - 1;
        memcpy(fmt, args[0].u.s.p, l);
        fmt[l] = 0;
        struct tm tm;
        localtime_r(&c->now, &tm);
        size_t k = strftime(out, sizeof out, fmt, &tm);
        return jv_str(c, out, k);
    }
    default: jfail(c, n, "internal: unknown global");
    }
}
