/*
 * filters.c — jinja2's built-in filters and tests that chat templates use, with transformers'
 * tojson. Semantics from jinja2 3.1 filters.py / tests.py and CPython's str methods (read for
 * behaviour): e.g. `default` replaces only undefined values (not None) unless boolean=true;
 * `length` counts code points of a string; `title` capitalizes after runs of - whitespace ( { [ <;
 * `indent` indents every line but the first (first=true: that too), blank lines only with
 * blank=true; `dictsort` / `sort` / `unique` compare strings case-insensitively by default;
 * `int` parses "3", " 3 ", "3.7" (-> 3), anything else -> default.
 * Case mapping (upper/lower/title/capitalize) is ASCII-only: non-ASCII letters pass unchanged.
 */
#include "jinja_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

jv *jb_arg(jv *args, size_t nargs, const char **kwn, jv *kwv, size_t nkw, size_t pos,
           const char *name) {
    if (pos < nargs) return &args[pos];
    for (size_t i = 0; i < nkw; i++)
        if (!strcmp(kwn[i], name)) return &kwv[i];
    return NULL;
}

static jv str_of(jctx *c, jv v) { return jv_to_str(c, v); }

static char lc(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch; }
static char uc(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch; }

jv jstr_map(jctx *c, jv s, int mode) {
    char *p = ja_alloc(&c->arena, s.u.s.n + 1);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        p[i] = mode == 1 ? uc(ch) : mode == 0 ? lc(ch) : (i == 0 ? uc(ch) : lc(ch));
    }
    return jv_str_ref(p, s.u.s.n);
}

jv jstr_strip(jctx *c, const jnode *at, jv s, const jv *chars, int which) {
    const char *p = s.u.s.p;
    size_t a = 0, b = s.u.s.n, k;
    bool ws = !chars || chars->t == JV_NONE || chars->t == JV_UNDEF;
    /* Python's str.strip: chars is None or a str (fuzz finding: a number was read as a string) */
    if (!ws && chars->t != JV_STR)
        jfail(c, at, "strip: chars must be a string or none, not %s", jv_type_name(*chars));
    if (ws) {
        if (which & 1)
            while (a < b && (k = ju_space_at(p + a, b - a)) > 0) a += k;
        if (which & 2)
            while (b > a && (k = ju_space_before(p + a, b - a)) > 0) b -= k;
    } else {
        const char *set = chars->u.s.p;
        size_t sn = chars->u.s.n;
        /* code-point aware: a char is stripped when its bytes occur as a code point in set */
        for (;;) {
            if (!(which & 1) || a >= b) break;
            size_t l = ju_off(p + a, b - a, 1);
            bool in = false;
            for (size_t q = 0; q < sn;) {
                size_t ql = ju_off(set + q, sn - q, 1);
                if (ql == l && !memcmp(set + q, p + a, l)) in = true;
                q += ql;
            }
            if (!in) break;
            a += l;
        }
        for (;;) {
            if (!(which & 2) || b <= a) break;
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            size_t l = b - st;
            bool in = false;
            for (size_t q = 0; q < sn;) {
                size_t ql = ju_off(set + q, sn - q, 1);
                if (ql == l && !memcmp(set + q, p + st, l)) in = true;
                q += ql;
            }
            if (!in) break;
            b = st;
        }
    }
    return jv_str_ref(p + a, b - a);
}

jv jstr_replace(jctx *c, jv s, jv old, jv new_, int64_t count) {
    jbuf b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t done = 0;
    if (old.u.s.n == 0) { /* insert between every code point */
        while (count < 0 || done < count) {
            jb_put(c, &b, new_.u.s.p, new_.u.s.n);
            done++;
            if (i >= n) break;
            size_t l = ju_off(p + i, n - i, 1);
            jb_put(c, &b, p + i, l);
            i += l;
        }
        jb_put(c, &b, p + i, n - i);
        return jv_str_ref(b.p ? b.p : "", b.n);
    }
    while (i < n) {
        const char *f = (count < 0 || done < count) ? memmem(p + i, n - i, old.u.s.p, old.u.s.n) : NULL;
        if (!f) break;
        jb_put(c, &b, p + i, (size_t)(f - (p + i)));
        jb_put(c, &b, new_.u.s.p, new_.u.s.n);
        i = (size_t)(f - p) + old.u.s.n;
        done++;
    }
    jb_put(c, &b, p + i, n - i);
    return jv_str_ref(b.p ? b.p : "", b.n);
}

/* environment.getitem for a dotted attribute path ("a.b", "0") */
static jv attr_path(jctx *c, const jnode *at, jv v, jv path) {
    if (path.t == JV_INT) return je_getitem(c, at, v, path);
    if (path.t != JV_STR) jfail(c, at, "attribute must be a string");
    const char *p = path.u.s.p, *e = p + path.u.s.n;
    while (p <= e) {
        const char *d = memchr(p, '.', (size_t)(e - p));
        if (!d) d = e;
        size_t l = (size_t)(d - p);
        bool digits = l > 0;
        for (size_t i = 0; i < l; i++)
            if (p[i] < '0' || p[i] > '9') digits = false;
        if (v.t == JV_UNDEF) return v;
        v = digits ? je_getitem(c, at, v, jv_int(strtoll(p, NULL, 10))) : je_getitem(c, at, v, jv_str_ref(p, l));
        p = d + 1;
    }
    return v;
}

static size_t jlength(jctx *c, const jnode *at, jv v) {
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_STR: return ju_len(v.u.s.p, v.u.s.n);
    case JV_LIST:
        if (v.u.l->is_gen) jfail(c, at, "object of type 'generator' has no len()");
        return v.u.l->n;
    case JV_DICT:
    case JV_NS: return v.u.d->n;
    case JV_LOOP: return v.u.lp->items->n;
    default: jfail(c, at, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* sort key for sort/unique/dictsort/min/max: lowercased strings unless case_sensitive */
static jv sort_key(jctx *c, jv v, bool cs) { return (!cs && v.t == JV_STR) ? jstr_map(c, v, 0) : v; }

static void merge_sort(jctx *c, const jnode *at, jv *vals, jv *keys, size_t n, bool rev, jv *tv, jv *tk) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(c, at, vals, keys, h, rev, tv, tk);
    merge_sort(c, at, vals + h, keys + h, n - h, rev, tv, tk);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r = jv_cmp(c, at, keys[j], keys[i]);
        bool take_right = rev ? r > 0 : r < 0;
        if (take_right) tv[k] = vals[j], tk[k++] = keys[j++];
        else tv[k] = vals[i], tk[k++] = keys[i++];
    }
    while (i < h) tv[k] = vals[i], tk[k++] = keys[i++];
    while (j < n) tv[k] = vals[j], tk[k++] = keys[j++];
    memcpy(vals, tv, n * sizeof *vals);
    memcpy(keys, tk, n * sizeof *keys);
}

static jv sorted(jctx *c, const jnode *at, jlist *src, jv *keys, bool rev) {
    jv r = jv_list(c, src->n, false);
    if (src->n) memcpy(r.u.l->v, src->v, src->n * sizeof(jv));
    jv *tv = ja_alloc(&c->arena, (src->n + 1) * sizeof(jv)), *tk = ja_alloc(&c->arena, (src->n + 1) * sizeof(jv));
    merge_sort(c, at, r.u.l->v, keys, src->n, rev, tv, tk);
    return r;
}

static jv do_indent(jctx *c, jv s, jv width, bool first, bool blank) {
    jv ind;
    if (width.t == JV_STR) ind = width;
    else {
        int64_t w = width.t == JV_INT ? width.u.i : width.t == JV_BOOL ? width.u.b : 4;
        if (w < 0) w = 0;
        if (w > 4096) w = 4096;
        char *p = ja_alloc(&c->arena, (size_t)w + 1);
        memset(p, ' ', (size_t)w);
        ind = jv_str_ref(p, (size_t)w);
    }
    /* s + "\n", split into lines (\n, \r\n, \r, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029) */
    jbuf in = {0}, out = {0};
    jb_put(c, &in, s.u.s.p, s.u.s.n);
    jb_putc(c, &in, '\n');
    const char *p = in.p;
    size_t n = in.n, i = 0, line = 0;
    if (first) jb_put(c, &out, ind.u.s.p, ind.u.s.n);
    while (i < n) {
        size_t st = i, brk = 0;
        while (i < n) {
            unsigned char ch = (unsigned char)p[i];
            if (ch == '\r') brk = (i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            else if (ch == '\n' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e)) brk = 1;
            else if (ch == 0xC2 && i + 1 < n && (unsigned char)p[i + 1] == 0x85) brk = 2;
            else if (ch == 0xE2 && i + 2 < n && (unsigned char)p[i + 1] == 0x80 &&
                     ((unsigned char)p[i + 2] == 0xA8 || (unsigned char)p[i + 2] == 0xA9)) brk = 3;
            if (brk) break;
            i++;
        }
        size_t len = i - st;
        if (line > 0) {
            jb_putc(c, &out, '\n');
            if (blank || len) jb_put(c, &out, ind.u.s.p, ind.u.s.n);
        }
        jb_put(c, &out, p + st, len);
        i += brk;
        line++;
    }
    return jv_str_ref(out.p ? out.p : "", out.n);
}

static jv do_int(jv v, jv dflt) {
    switch (v.t) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.u.b);
    case JV_FLOAT:
        if (isnan(v.u.f) || isinf(v.u.f) || fabs(v.u.f) > 9.2e18) return dflt;
        return jv_int((int64_t)v.u.f);
    case JV_STR: {
        char buf[128];
        size_t n = v.u.s.n < sizeof buf - 1 ? v.u.s.n : sizeof buf - 1, o = 0;
        for (size_t i = 0; i < n; i++)
            if (v.u.s.p[i] != '_') buf[o++] = v.u.s.p[i];
        buf[o] = 0;
        char *e;
        long long x = strtoll(buf, &e, 10);
        while (*e == ' ' || *e == '\t' || *e == '\n') e++;
        if (o && *e == 0 && e != buf) return jv_int(x);
        double f = strtod(buf, &e);
        while (*e == ' ' || *e == '\t' || *e == '\n') e++;
        if (o && *e == 0 && e != buf && isfinite(f) && fabs(f) < 9.2e18) return jv_int((int64_t)f);
        return dflt;
    }
    default: return dflt;
    }
}

static jv do_float(jv v, jv dflt) {
    switch (v.t) {
    case JV_INT: return jv_float((double)v.u.i);
    case JV_BOOL: return jv_float(v.u.b);
    case JV_FLOAT: return v;
    case JV_STR: {
        char buf[128];
        size_t n = v.u.s.n < sizeof buf - 1 ? v.u.s.n : sizeof buf - 1;
        memcpy(buf, v.u.s.p, n);
        buf[n] = 0;
        char *e;
        double f = strtod(buf, &e);
        while (*e == ' ' || *e == '\t' || *e == '\n') e++;
        if (n && *e == 0 && e != buf) return jv_float(f);
        return dflt;
    }
    default: return dflt;
    }
}

jv jv_html_escape(jctx *c, jv s) {
    if (s.safe) return s;
    jbuf b = {0};
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        const char *r = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        if (r) jb_puts(c, &b, r);
        else jb_putc(c, &b, ch);
    }
    jv r = jv_str_ref(b.p ? b.p : "", b.n);
    r.safe = true;
    return r;
}

static jv do_tojson(jctx *c, const jnode *at, jv v, jv *ascii, jv *indent, jv *seps, jv *sortk) {
    int ind = -1;
    const char *ind_str = NULL;
    if (indent && indent->t == JV_INT) ind = indent->u.i < 0 ? 0 : indent->u.i > 64 ? 64 : (int)indent->u.i;
    else if (indent && indent->t == JV_STR) ind_str = ja_strndup(&c->arena, indent->u.s.p, indent->u.s.n);
    const char *is = NULL, *ks = NULL;
    if (seps && seps->t == JV_LIST && seps->u.l->n == 2 && seps->u.l->v[0].t == JV_STR && seps->u.l->v[1].t == JV_STR) {
        is = ja_strndup(&c->arena, seps->u.l->v[0].u.s.p, seps->u.l->v[0].u.s.n);
        ks = ja_strndup(&c->arena, seps->u.l->v[1].u.s.p, seps->u.l->v[1].u.s.n);
    }
    jbuf b = {0};
    if (!jv_json_to(c, &b, v, ascii && jv_truthy(*ascii), ind, ind_str, is, ks, sortk && jv_truthy(*sortk), 0))
        jfail(c, at, "tojson: object of type '%s' is not JSON serializable", jv_type_name(v));
    return jv_str_ref(b.p ? b.p : "", b.n);
}

static jv do_title(jctx *c, jv s) {
    char *p = ja_alloc(&c->arena, s.u.s.n + 1);
    bool start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        bool sep = ch == '-' || ch == '(' || ch == '{' || ch == '[' || ch == '<' || ch == ' ' ||
                   (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
        if (sep) {
            p[i] = ch;
            start = true;
        } else {
            p[i] = start ? uc(ch) : lc(ch);
            start = false;
        }
    }
    return jv_str_ref(p, s.u.s.n);
}

jv jb_filter(jctx *c, const jnode *n, const char *name, jv v, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw) {
    jv *a0 = JB_ARG(0, "");
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv *dv = JB_ARG(0, "default_value"), *bo = JB_ARG(1, "boolean");
        bool boolean = bo && jv_truthy(*bo);
        if (v.t == JV_UNDEF || (boolean && !jv_truthy(v))) return dv ? *dv : jv_str_ref("", 0);
        return v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int((int64_t)jlength(c, n, v));
    if (!strcmp(name, "tojson"))
        return do_tojson(c, n, v, JB_ARG(0, "ensure_ascii"), JB_ARG(1, "indent"), JB_ARG(2, "separators"), JB_ARG(3, "sort_keys"));
    if (!strcmp(name, "safe")) {
        jv r = str_of(c, v);
        r.safe = true;
        return r;
    }
    if (!strcmp(name, "string")) return str_of(c, v);
    if (!strcmp(name, "trim")) {
        jv r = jstr_strip(c, n, str_of(c, v), JB_ARG(0, "chars"), 3);
        r.safe = v.t == JV_STR && v.safe;
        return r;
    }
    if (!strcmp(name, "upper")) return jstr_map(c, str_of(c, v), 1);
    if (!strcmp(name, "lower")) return jstr_map(c, str_of(c, v), 0);
    if (!strcmp(name, "capitalize")) return jstr_map(c, str_of(c, v), 2);
    if (!strcmp(name, "title")) return do_title(c, str_of(c, v));
    if (!strcmp(name, "escape") || !strcmp(name, "e") || !strcmp(name, "forceescape"))
        return jv_html_escape(c, str_of(c, v));
    if (!strcmp(name, "replace")) {
        jv *o = JB_ARG(0, "old"), *nw = JB_ARG(1, "new"), *cnt = JB_ARG(2, "count");
        if (!o || !nw) jfail(c, n, "replace needs old and new");
        return jstr_replace(c, str_of(c, v), str_of(c, *o), str_of(c, *nw),
                            cnt && cnt->t == JV_INT ? cnt->u.i : -1);
    }
    if (!strcmp(name, "indent")) {
        jv *w = JB_ARG(0, "width"), *f = JB_ARG(1, "first"), *bl = JB_ARG(2, "blank");
        return do_indent(c, str_of(c, v), w ? *w : jv_int(4), f && jv_truthy(*f), bl && jv_truthy(*bl));
    }
    if (!strcmp(name, "int")) {
        jv *d = JB_ARG(0, "default");
        return do_int(v, d ? *d : jv_int(0));
    }
    if (!strcmp(name, "float")) {
        jv *d = JB_ARG(0, "default");
        return do_float(v, d ? *d : jv_float(0));
    }
    if (!strcmp(name, "abs")) {
        if (v.t == JV_INT) return v.u.i == INT64_MIN ? v : jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        if (v.t == JV_BOOL) return jv_int(v.u.b);
        if (v.t == JV_FLOAT) return jv_float(fabs(v.u.f));
        jfail(c, n, "bad operand type for abs(): '%s'", jv_type_name(v));
    }
    if (!strcmp(name, "round")) {
        jv *pr = JB_ARG(0, "precision"), *me = JB_ARG(1, "method");
        int64_t p = pr && pr->t == JV_INT ? pr->u.i : 0;
        if (p > 30) p = 30;
        if (p < 0) p = 0;
        if (!(v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL)) jfail(c, n, "round needs a number, got '%s'", jv_type_name(v));
        double x = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
        double m = pow(10, (double)p);
        if (me && me->t == JV_STR && me->u.s.n == 4 && !memcmp(me->u.s.p, "ceil", 4)) return jv_float(ceil(x * m) / m);
        if (me && me->t == JV_STR && me->u.s.n == 5 && !memcmp(me->u.s.p, "floor", 5)) return jv_float(floor(x * m) / m);
        if (v.t != JV_FLOAT) return v.t == JV_BOOL ? jv_int(v.u.b) : v;
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)p, x);
        return jv_float(strtod(buf, NULL));
    }
    if (!strcmp(name, "list")) {
        jlist *l = je_iter(c, n, v);
        jv r = jv_list(c, l->n, false);
        if (l->n) memcpy(r.u.l->v, l->v, l->n * sizeof(jv));
        return r;
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        jlist *l = je_iter(c, n, v);
        if (name[0] == 'l' && v.t == JV_LIST && l->is_gen) jfail(c, n, "'generator' object is not reversible");
        if (!l->n) return jv_undef(NULL);
        return name[0] == 'f' ? l->v[0] : l->v[l->n - 1];
    }
    if (!strcmp(name, "reverse")) {
        jlist *l = je_iter(c, n, v);
        if (v.t == JV_STR) {
            jbuf b = {0};
            for (size_t i = l->n; i-- > 0;) jb_put(c, &b, l->v[i].u.s.p, l->v[i].u.s.n);
            return jv_str_ref(b.p ? b.p : "", b.n);
        }
        jv r = jv_list(c, l->n, false);
        for (size_t i = 0; i < l->n; i++) r.u.l->v[i] = l->v[l->n - 1 - i];
        r.u.l->is_gen = true; /* reversed(list) is an iterator */
        return r;
    }
    if (!strcmp(name, "join")) {
        jv *sep = JB_ARG(0, "d"), *at = JB_ARG(1, "attribute");
        jlist *l = je_iter(c, n, v);
        jbuf b = {0};
        jv s = sep ? str_of(c, *sep) : jv_str_ref("", 0);
        for (size_t i = 0; i < l->n; i++) {
            if (i) jb_put(c, &b, s.u.s.p, s.u.s.n);
            jv_str_to(c, &b, at ? attr_path(c, n, l->v[i], *at) : l->v[i]);
        }
        return jv_str_ref(b.p ? b.p : "", b.n);
    }
    if (!strcmp(name, "items")) {
        if (v.t == JV_UNDEF) return jv_list(c, 0, false);
        if (v.t != JV_DICT && v.t != JV_NS) jfail(c, n, "items: can only get item pairs from a mapping, not '%s'", jv_type_name(v));
        jv r = jv_list(c, v.u.d->n, false);
        for (size_t i = 0; i < v.u.d->n; i++) {
            jv t = jv_list(c, 2, true);
            t.u.l->v[0] = v.u.d->k[i];
            t.u.l->v[1] = v.u.d->v[i];
            r.u.l->v[i] = t;
        }
        r.u.l->is_gen = true;
        return r;
    }
    if (!strcmp(name, "dictsort")) {
        if (v.t != JV_DICT && v.t != JV_NS) jfail(c, n, "dictsort needs a mapping, got '%s'", jv_type_name(v));
        jv *cs = JB_ARG(0, "case_sensitive"), *by = JB_ARG(1, "by"), *rv = JB_ARG(2, "reverse");
        bool by_value = by && by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5);
        jv items = jv_list(c, v.u.d->n, false);
        jv *keys = ja_alloc(&c->arena, (v.u.d->n + 1) * sizeof(jv));
        for (size_t i = 0; i < v.u.d->n; i++) {
            jv t = jv_list(c, 2, true);
            t.u.l->v[0] = v.u.d->k[i];
            t.u.l->v[1] = v.u.d->v[i];
            items.u.l->v[i] = t;
            keys[i] = sort_key(c, by_value ? v.u.d->v[i] : v.u.d->k[i], cs && jv_truthy(*cs));
        }
        return sorted(c, n, items.u.l, keys, rv && jv_truthy(*rv));
    }
    if (!strcmp(name, "sort") || !strcmp(name, "unique") || !strcmp(name, "min") || !strcmp(name, "max")) {
        bool is_sort = name[1] == 'o';
        jv *rv = is_sort ? JB_ARG(0, "reverse") : NULL;
        jv *cs = JB_ARG(is_sort ? 1 : 0, "case_sensitive"), *at = JB_ARG(is_sort ? 2 : 1, "attribute");
        jlist *l = je_iter(c, n, v);
        jv *keys = ja_alloc(&c->arena, (l->n + 1) * sizeof(jv));
        for (size_t i = 0; i < l->n; i++)
            keys[i] = sort_key(c, at ? attr_path(c, n, l->v[i], *at) : l->v[i], cs && jv_truthy(*cs));
        if (is_sort) return sorted(c, n, l, keys, rv && jv_truthy(*rv));
        if (name[0] == 'u') {
            jv r = jv_list(c, l->n, false);
            size_t k = 0;
            for (size_t i = 0; i < l->n; i++) {
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++) seen = jv_eq(keys[j], keys[i]);
                if (!seen) r.u.l->v[k++] = l->v[i];
            }
            r.u.l->n = k;
            r.u.l->is_gen = true;
            return r;
        }
        if (!l->n) return jv_undef(NULL);
        size_t best = 0;
        for (size_t i = 1; i < l->n; i++) {
            int r = jv_cmp(c, n, keys[i], keys[best]);
            if (name[1] == 'i' ? r < 0 : r > 0) best = i;
        }
        return l->v[best];
    }
    if (!strcmp(name, "sum")) {
        jv *at = JB_ARG(0, "attribute"), *st = JB_ARG(1, "start");
        jlist *l = je_iter(c, n, v);
        jv acc = st ? *st : jv_int(0);
        for (size_t i = 0; i < l->n; i++) {
            jv x = at ? attr_path(c, n, l->v[i], *at) : l->v[i];
            if ((acc.t == JV_INT || acc.t == JV_BOOL) && (x.t == JV_INT || x.t == JV_BOOL)) {
                int64_t r;
                if (__builtin_add_overflow(acc.t == JV_INT ? acc.u.i : acc.u.b, x.t == JV_INT ? x.u.i : x.u.b, &r))
                    jfail(c, n, "integer overflow in sum");
                acc = jv_int(r);
            } else if ((acc.t == JV_INT || acc.t == JV_FLOAT || acc.t == JV_BOOL) && (x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL)) {
                double fa = acc.t == JV_FLOAT ? acc.u.f : acc.t == JV_INT ? (double)acc.u.i : acc.u.b;
                double fx = x.t == JV_FLOAT ? x.u.f : x.t == JV_INT ? (double)x.u.i : x.u.b;
                acc = jv_float(fa + fx);
            } else {
                jfail(c, n, "sum: unsupported operand types '%s' and '%s'", jv_type_name(acc), jv_type_name(x));
            }
        }
        return acc;
    }
    if (!strcmp(name, "map")) {
        jlist *l = jv_truthy(v) ? je_iter(c, n, v) : jv_list(c, 0, false).u.l;
        jv r = jv_list(c, l->n, false);
        r.u.l->is_gen = true;
        jv *at = NULL, *dflt = NULL;
        for (size_t i = 0; i < nkw; i++) {
            if (!strcmp(kwn[i], "attribute")) at = &kwv[i];
            if (!strcmp(kwn[i], "default")) dflt = &kwv[i];
        }
        if (at) {
            for (size_t i = 0; i < l->n; i++) {
                jv x = attr_path(c, n, l->v[i], *at);
                r.u.l->v[i] = (x.t == JV_UNDEF && dflt) ? *dflt : x;
            }
            return r;
        }
        if (!nargs || args[0].t != JV_STR) jfail(c, n, "map needs a filter name or attribute=");
        const char *fname = ja_strndup(&c->arena, args[0].u.s.p, args[0].u.s.n);
        for (size_t i = 0; i < l->n; i++) {
            jstep(c, n);
            r.u.l->v[i] = jb_filter(c, n, fname, l->v[i], args + 1, nargs - 1, kwn, kwv, nkw);
        }
        return r;
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
        bool attr = strstr(name, "attr") != NULL, keep_true = name[0] == 's';
        size_t ti = attr ? 1 : 0;
        if (attr && !nargs) jfail(c, n, "%s needs an attribute name", name);
        jlist *l = jv_truthy(v) ? je_iter(c, n, v) : jv_list(c, 0, false).u.l;
        jv r = jv_list(c, l->n, false);
        r.u.l->is_gen = true;
        size_t k = 0;
        const char *tname = NULL;
        if (nargs > ti) {
            if (args[ti].t != JV_STR) jfail(c, n, "%s: the test name must be a string", name);
            tname = ja_strndup(&c->arena, args[ti].u.s.p, args[ti].u.s.n);
            if (!jb_has_test(tname)) jfail(c, n, "no test named '%s'", tname);
        }
        for (size_t i = 0; i < l->n; i++) {
            jstep(c, n);
            jv x = attr ? attr_path(c, n, l->v[i], args[0]) : l->v[i];
            bool t = tname ? jb_test(c, n, tname, x, args + ti + 1, nargs > ti + 1 ? nargs - ti - 1 : 0) : jv_truthy(x);
            if (t == keep_true) r.u.l->v[k++] = l->v[i];
        }
        r.u.l->n = k;
        return r;
    }
    if (!strcmp(name, "attr")) {
        if (!a0 || a0->t != JV_STR) jfail(c, n, "attr needs a name");
        return je_getattr(c, n, v, ja_strndup(&c->arena, a0->u.s.p, a0->u.s.n), a0->u.s.n);
    }
    if (!strcmp(name, "wordcount")) {
        jv s = str_of(c, v);
        int64_t cnt = 0;
        bool in = false;
        for (size_t i = 0; i < s.u.s.n; i++) {
            char ch = s.u.s.p[i];
            bool w = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (unsigned char)ch >= 0x80;
            if (w && !in) cnt++;
            in = w;
        }
        return jv_int(cnt);
    }
    jfail(c, n, "no filter named '%s'", name);
}

/* ---- tests -------------------------------------------------------------------------------- */

static const char *const TESTS[] = {
    "defined", "undefined", "none",   "boolean",   "false",       "true",  "integer", "float",
    "number",  "string",    "mapping", "iterable", "sequence",    "callable", "sameas", "escaped",
    "lower",   "upper",     "eq",     "equalto",   "==",          "ne",    "!=",      "lt",
    "lessthan", "<",        "le",     "<=",        "gt",          "greaterthan", ">", "ge",
    ">=",      "in",        "odd",    "even",      "divisibleby", NULL};

bool jb_has_test(const char *name) {
    for (size_t i = 0; TESTS[i]; i++)
        if (!strcmp(TESTS[i], name)) return true;
    return false;
}

bool jb_test(jctx *c, const jnode *n, const char *name, jv v, jv *args, size_t nargs) {
    jv a = nargs ? args[0] : jv_undef(NULL);
    if (!strcmp(name, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(name, "none")) return v.t == JV_NONE;
    if (!strcmp(name, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(name, "false")) return v.t == JV_BOOL && !v.u.b;
    if (!strcmp(name, "true")) return v.t == JV_BOOL && v.u.b;
    if (!strcmp(name, "integer")) return v.t == JV_INT;
    if (!strcmp(name, "float")) return v.t == JV_FLOAT;
    if (!strcmp(name, "number")) return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
    if (!strcmp(name, "string")) return v.t == JV_STR;
    if (!strcmp(name, "mapping")) return v.t == JV_DICT;
    if (!strcmp(name, "iterable"))
        return v.t == JV_UNDEF || v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_LOOP;
    if (!strcmp(name, "sequence"))
        return v.t == JV_UNDEF || v.t == JV_STR || (v.t == JV_LIST && !v.u.l->is_gen) || v.t == JV_DICT;
    if (!strcmp(name, "callable")) return v.t == JV_MACRO || v.t == JV_FUNC;
    if (!strcmp(name, "escaped")) return false;
    if (!strcmp(name, "sameas")) {
        if (v.t != a.t) return false;
        if (v.t == JV_NONE || v.t == JV_UNDEF) return true;
        if (v.t == JV_BOOL) return v.u.b == a.u.b;
        if (v.t == JV_INT) return v.u.i == a.u.i && v.u.i >= -5 && v.u.i <= 256; /* CPython small ints */
        if (v.t == JV_LIST) return v.u.l == a.u.l;
        if (v.t == JV_DICT || v.t == JV_NS) return v.u.d == a.u.d;
        if (v.t == JV_STR) return v.u.s.p == a.u.s.p && v.u.s.n == a.u.s.n;
        return jv_eq(v, a);
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        jv s = jv_to_str(c, v);
        bool cased = false;
        for (size_t i = 0; i < s.u.s.n; i++) {
            char ch = s.u.s.p[i];
            if (ch >= 'a' && ch <= 'z') {
                if (name[0] == 'u') return false;
                cased = true;
            } else if (ch >= 'A' && ch <= 'Z') {
                if (name[0] == 'l') return false;
                cased = true;
            }
        }
        return cased;
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return jv_eq(v, a);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jv_eq(v, a);
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "<")) return jv_cmp(c, n, v, a) < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return jv_cmp(c, n, v, a) <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, ">")) return jv_cmp(c, n, v, a) > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return jv_cmp(c, n, v, a) >= 0;
    if (!strcmp(name, "in")) {
        if (a.t == JV_STR) {
            if (v.t != JV_STR) jfail(c, n, "'in <string>' requires string as left operand");
            return v.u.s.n == 0 || memmem(a.u.s.p, a.u.s.n, v.u.s.p, v.u.s.n) != NULL;
        }
        if (a.t == JV_LIST) {
            for (size_t i = 0; i < a.u.l->n; i++)
                if (jv_eq(a.u.l->v[i], v)) return true;
            return false;
        }
        if (a.t == JV_DICT || a.t == JV_NS) return jd_get(a.u.d, v) != NULL;
        jfail(c, n, "argument of type '%s' is not iterable", jv_type_name(a));
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        if (v.t != JV_INT && v.t != JV_BOOL) jfail(c, n, "test '%s' needs an integer, got '%s'", name, jv_type_name(v));
        int64_t x = v.t == JV_INT ? v.u.i : v.u.b;
        if (name[0] == 'o') return (x % 2) != 0;
        if (name[0] == 'e') return (x % 2) == 0;
        if (a.t != JV_INT || a.u.i == 0) jfail(c, n, "divisibleby needs a non-zero integer");
        return a.u.i == -1 || x % a.u.i == 0;
    }
    jfail(c, n, "no test named '%s'", name);
}
