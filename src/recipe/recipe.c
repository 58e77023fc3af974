/*
 * recipe — what the key table (recipe_keys.c) drives when values come in: defaults, value
 * parsing and range checks (data entries included), --set overrides. YAML input is
 * recipe_load.c, printed output recipe_print.c, queries and cross-field validation
 * recipe_check.c.
 *
 * Invariants: every table row's field lives at `off` in lt_recipe with the C type its rk_type
 * names; a row's default text parses (checked by LT_ASSERT in lt_recipe_defaults); from[i]
 * describes row i. The table order is the order of the docs and of the resolved copy.
 */
#include "recipe/recipe_impl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ---- small helpers ------------------------------------------------------------------------ */

int lt_recipe__find(const char *section, size_t seclen, const char *key) {
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const char *n = lt_recipe_keys[i].name;
        if (strncmp(n, section, seclen) == 0 && n[seclen] == '.' && !strcmp(n + seclen + 1, key))
            return i;
    }
    return -1;
}

int lt_recipe__find_full(const char *name) {
    const char *dot = strchr(name, '.');
    if (!dot) return -1;
    return lt_recipe__find(name, (size_t)(dot - name), dot + 1);
}

lt_status lt_recipe__fail(const rv_ctx *c, int line, int col, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->set) return lt_error_set(LT_ERR_RECIPE, "--set %s: %s", c->set, msg);
    if (c->file && line > 0)
        return lt_error_set(LT_ERR_RECIPE, "%s:%d:%d: %s", c->file, line, col, msg);
    if (c->file) return lt_error_set(LT_ERR_RECIPE, "%s: %s", c->file, msg);
    return lt_error_set(LT_ERR_RECIPE, "%s", msg);
}

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return INT_MAX / 2;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* Close enough to suggest: at most 2 edits, or a third of the word. */
static bool near(const char *typed, int dist) {
    int len = (int)strlen(typed);
    return dist <= 2 || dist <= len / 3;
}

/* Best candidate from a NULL-terminated list, or NULL. */
static const char *closest(const char *typed, const char *const *cands) {
    const char *best = NULL;
    int bd = INT_MAX;
    for (; *cands; cands++) {
        int d = edit_distance(typed, *cands);
        if (d < bd) bd = d, best = *cands;
    }
    return best && near(typed, bd) ? best : NULL;
}

void lt_recipe__suggest_key(const char *section, const char *key, char *out, size_t n) {
    out[0] = 0;
    /* the same key under another section first ("train.lr" -> "optim.lr") */
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const char *dot = strchr(lt_recipe_keys[i].name, '.');
        if (!strcmp(dot + 1, key)) {
            snprintf(out, n, "; hint: did you mean '%s'?", lt_recipe_keys[i].name);
            return;
        }
    }
    /* a key of this section that starts with what was typed ("warmup" -> "warmup_steps") */
    size_t sl0 = strlen(section), kl = strlen(key);
    for (int i = 0; i < LT_RECIPE_NKEYS && kl >= 3; i++) {
        const char *nm = lt_recipe_keys[i].name;
        if (!strncmp(nm, section, sl0) && nm[sl0] == '.' && !strncmp(nm + sl0 + 1, key, kl)) {
            snprintf(out, n, "; hint: did you mean '%s'?", nm);
            return;
        }
    }
    char full[256];
    snprintf(full, sizeof full, "%s.%s", section, key);
    const char *names[LT_RECIPE_NKEYS + 1];
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) names[i] = lt_recipe_keys[i].name;
    names[LT_RECIPE_NKEYS] = NULL;
    const char *best = closest(full, names);
    if (best) {
        snprintf(out, n, "; hint: did you mean '%s'?", best);
        return;
    }
    /* list the section's keys */
    size_t sl = strlen(section);
    int used = snprintf(out, n, "; hint: keys in '%s' are ", section);
    bool any = false;
    for (int i = 0; i < LT_RECIPE_NKEYS && used > 0 && (size_t)used < n; i++) {
        const char *nm = lt_recipe_keys[i].name;
        if (strncmp(nm, section, sl) || nm[sl] != '.') continue;
        int w = snprintf(out + used, n - (size_t)used, "%s%s", any ? ", " : "", nm + sl + 1);
        if (w < 0) break;
        used += w;
        any = true;
    }
    if (!any) out[0] = 0;
}

void lt_recipe__suggest_section(const char *section, char *out, size_t n) {
    out[0] = 0;
    /* a subsection written at the top level ("gate:" for output's "gate:") */
    size_t gl = strlen(section);
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const char *nm = lt_recipe_keys[i].name, *dot = strchr(nm, '.');
        if (!strncmp(dot + 1, section, gl) && dot[1 + gl] == '.') {
            snprintf(out, n, "; hint: '%s:' belongs under '%.*s:' (as %.*s.%s)", section,
                     (int)(dot - nm), nm, (int)(dot - nm), nm, section);
            return;
        }
    }
    const char *secs[LT_RECIPE_NKEYS + 1];
    int ns = 0;
    char buf[LT_RECIPE_NKEYS][32];
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const char *nm = lt_recipe_keys[i].name;
        size_t l = (size_t)(strchr(nm, '.') - nm);
        if (ns && !strncmp(secs[ns - 1], nm, l) && secs[ns - 1][l] == 0) continue;
        snprintf(buf[ns], sizeof buf[ns], "%.*s", (int)l, nm);
        secs[ns] = buf[ns];
        ns++;
    }
    secs[ns] = NULL;
    const char *best = closest(section, secs);
    if (best) {
        snprintf(out, n, "; hint: did you mean '%s'?", best);
        return;
    }
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const char *dot = strchr(lt_recipe_keys[i].name, '.');
        if (!strcmp(dot + 1, section)) {
            snprintf(out, n, "; hint: did you mean '%s' (key '%s' under section '%.*s:')?",
                     lt_recipe_keys[i].name, dot + 1, (int)(dot - lt_recipe_keys[i].name),
                     lt_recipe_keys[i].name);
            return;
        }
    }
    size_t used = 0;
    for (int i = 0; i < ns; i++) {
        int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "; hint: sections are ", secs[i]);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

void lt_recipe__fmt_double(double x, char *buf, size_t n) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

void lt_recipe__range_text(const rk_key *k, char *buf, size_t n) {
    char a[40], b[40];
    lt_recipe__fmt_double(k->min, a, sizeof a);
    lt_recipe__fmt_double(k->max, b, sizeof b);
    if (k->type == RK_INT) { /* integer keys' limits in full: 1000000000, not 1e+09 */
        snprintf(a, sizeof a, "%lld", (long long)k->min);
        snprintf(b, sizeof b, "%lld", (long long)k->max);
    }
    buf[0] = 0;
    if ((k->flags & RF_MIN) && (k->flags & RF_MAX) && !(k->flags & (RF_MIN_EXCL | RF_MAX_EXCL)))
        snprintf(buf, n, "%s to %s", a, b);
    else if ((k->flags & RF_MIN) && (k->flags & RF_MAX))
        snprintf(buf, n, "%s %s and %s %s", k->flags & RF_MIN_EXCL ? ">" : ">=", a,
                 k->flags & RF_MAX_EXCL ? "<" : "<=", b);
    else if (k->flags & RF_MIN)
        snprintf(buf, n, "%s %s", k->flags & RF_MIN_EXCL ? ">" : ">=", a);
    else if (k->flags & RF_MAX)
        snprintf(buf, n, "%s %s", k->flags & RF_MAX_EXCL ? "<" : "<=", b);
}

/* The scalar as the user wrote it, shortened for messages. */
static const char *shown(const char *text, char *buf, size_t n) {
    size_t l = strlen(text);
    if (l + 1 <= n && l <= 60) return text;
    snprintf(buf, n, "%.57s...", text);
    return buf;
}

lt_data_entry lt_data_entry_unset(void) {
    return (lt_data_entry){.format = -1, .max_len = -1, .eval_fraction = -1, .on_error = -1};
}

bool lt_data_entry_is_set(const lt_data_entry *e) {
    return e->weight > 0 || e->format >= 0 || e->template_name || e->max_len >= 0 ||
           e->eval_fraction >= 0 || e->on_error >= 0;
}

void lt_recipe_list_free(lt_recipe_list *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    for (int i = 0; l->entries && i < l->n; i++) free(l->entries[i].template_name);
    free(l->items);
    free(l->entries);
    l->items = NULL;
    l->entries = NULL;
    l->n = 0;
}

static void list_push(lt_recipe_list *l, char *s) {
    l->items = lt_xrealloc(l->items, (size_t)(l->n + 1) * sizeof *l->items);
    if (l->entries) {
        l->entries = lt_xrealloc(l->entries, (size_t)(l->n + 1) * sizeof *l->entries);
        l->entries[l->n] = lt_data_entry_unset();
    }
    l->items[l->n++] = s;
}

/* Give l entries (all unset) if it has none yet. */
static void list_want_entries(lt_recipe_list *l) {
    if (l->entries) return;
    l->entries = lt_xmalloc((size_t)(l->n ? l->n : 1) * sizeof *l->entries);
    for (int i = 0; i < l->n; i++) l->entries[i] = lt_data_entry_unset();
}

void lt_recipe_list_add(lt_recipe_list *l, const char *s) { list_push(l, lt_xstrdup(s)); }

/* base + "/" + p (or p itself if absolute, or $HOME for ~/), with "." and ".." removed. */
static lt_status path_resolve(const char *p, const rv_ctx *c, const char *key, int line, int col,
                              char **out) {
    char *joined;
    if (p[0] == '/') {
        joined = lt_xstrdup(p);
    } else if (p[0] == '~' && (p[1] == '/' || p[1] == 0)) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return lt_recipe__fail(c, line, col,
                                   "%s: '%s' starts with ~ but HOME is not set; hint: write the "
                                   "path in full",
                                   key, p);
        if (asprintf(&joined, "%s/%s", home, p + 1) < 0) joined = NULL;
    } else {
        if (asprintf(&joined, "%s/%s", c->base_dir ? c->base_dir : ".", p) < 0) joined = NULL;
    }
    LT_ASSERT(joined);
    size_t len = strlen(joined);
    char *res = lt_xmalloc(len + 2);
    size_t used = 0;
    const char *s = joined;
    bool absolute = joined[0] == '/';
    while (*s) {
        while (*s == '/') s++;
        const char *e = s;
        while (*e && *e != '/') e++;
        size_t cl = (size_t)(e - s);
        if (cl == 0 || (cl == 1 && s[0] == '.')) {
            /* skip */
        } else if (cl == 2 && s[0] == '.' && s[1] == '.' && used > 0 &&
                   !(used >= 2 && !strncmp(res + used - 2, "..", 2) &&
                     (used == 2 || res[used - 3] == '/'))) {
            while (used > 0 && res[used - 1] != '/') used--;
            if (used > 0) used--; /* drop the slash too */
        } else if (cl == 2 && s[0] == '.' && s[1] == '.' && absolute && used == 0) {
            /* "/.." is "/" */
        } else {
            if (used > 0 || absolute) res[used++] = '/';
            memcpy(res + used, s, cl);
            used += cl;
        }
        s = e;
    }
    if (used == 0) res[used++] = absolute ? '/' : '.';
    res[used] = 0;
    free(joined);
    *out = res;
    return LT_OK;
}

/* ---- value parsing ------------------------------------------------------------------------ */

static lt_status check_range(const rk_key *k, const char *name, double x, const rv_scalar *s,
                             const rv_ctx *c) {
    bool ok = true;
    if (k->flags & RF_MIN) ok = ok && ((k->flags & RF_MIN_EXCL) ? x > k->min : x >= k->min);
    if (k->flags & RF_MAX) ok = ok && ((k->flags & RF_MAX_EXCL) ? x < k->max : x <= k->max);
    if (ok) return LT_OK;
    char range[96], b[80];
    lt_recipe__range_text(k, range, sizeof range);
    const char *hint = k->def ? "; hint: the default is " : "";
    return lt_recipe__fail(c, s->line, s->col, "%s must be %s, got %s%s%s", name, range,
                           shown(s->text, b, sizeof b), hint, k->def ? k->def : "");
}

static lt_status parse_int(const rk_key *k, const rv_scalar *s, const rv_ctx *c, int64_t *out) {
    const char *t = s->text;
    char b[80];
    bool ok = *t != 0;
    for (const char *p = t; *p && ok; p++)
        ok = isdigit((unsigned char)*p) || ((*p == '-' || *p == '+') && p == t);
    errno = 0;
    char *end = NULL;
    long long v = ok ? strtoll(t, &end, 10) : 0;
    if (ok && (errno == ERANGE || *end)) ok = false;
    if (!ok) {
        char range[96];
        lt_recipe__range_text(k, range, sizeof range);
        return lt_recipe__fail(c, s->line, s->col,
                               "%s: expected an integer, got '%s'; hint: %s takes a whole "
                               "number%s%s",
                               k->name, shown(t, b, sizeof b), k->name, *range ? " " : "", range);
    }
    *out = v;
    return check_range(k, k->name, (double)v, s, c);
}

static lt_status parse_float(const rk_key *k, const char *name, const rv_scalar *s,
                             const rv_ctx *c, double *out) {
    const char *t = s->text;
    char b[80];
    bool ok = *t != 0;
    for (const char *p = t; *p && ok; p++)
        ok = isdigit((unsigned char)*p) || strchr("+-.eE", *p);
    char *end = NULL;
    double v = ok ? strtod(t, &end) : 0;
    if (ok && (*end || !isfinite(v))) ok = false;
    if (!ok)
        return lt_recipe__fail(c, s->line, s->col,
                               "%s: expected a number, got '%s'; hint: write e.g. 0.5, 2e-4 or 3",
                               name, shown(t, b, sizeof b));
    *out = v;
    return check_range(k, name, v, s, c);
}

static lt_status parse_bool(const rk_key *k, const rv_scalar *s, const rv_ctx *c, bool *out) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s->text, yes[i])) return *out = true, LT_OK;
        if (!strcasecmp(s->text, no[i])) return *out = false, LT_OK;
    }
    char b[80];
    return lt_recipe__fail(c, s->line, s->col, "%s: expected true or false, got '%s'", k->name,
                           shown(s->text, b, sizeof b));
}

static void choices_text(const char *const *ch, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; ch[i]; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", ch[i]);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

/* Index of s->text in choices, or an error with a suggestion. */
static lt_status parse_choice(const rk_key *k, const rv_scalar *s, const rv_ctx *c, int *out,
                              const char *what) {
    for (int i = 0; k->choices[i]; i++)
        if (!strcmp(s->text, k->choices[i])) return *out = i, LT_OK;
    char all[256], b[80], hint[160] = "";
    choices_text(k->choices, all, sizeof all);
    const char *best = closest(s->text, k->choices);
    if (best) snprintf(hint, sizeof hint, "did you mean '%s'? ", best);
    return lt_recipe__fail(c, s->line, s->col, "%s: unknown %s '%s'; hint: %sexpected one of %s",
                           k->name, what, shown(s->text, b, sizeof b), hint, all);
}

static const char *kind_name(rv_kind k) {
    return k == RV_SEQ ? "a list" : k == RV_MAP ? "a mapping" : "a single value";
}

void lt_recipe__parsed_free(rv_parsed *p) {
    free(p->s);
    p->s = NULL;
    lt_recipe_list_free(&p->list);
}

/* One data.train / data.eval item written as a mapping into out (path resolved, fields parsed
 * with the rows of the data.* keys they stand for). Item numbers in messages are 1-based. */
static lt_status parse_entry(const rk_key *k, const rv_scalar *s, const rv_ctx *c, int item,
                             lt_recipe_list *out) {
    static const char *const fields[] = {"path",          "weight",   "format", "template",
                                         "max_len",       "eval_fraction", "on_error", NULL};
    static const char *const rows[] = {NULL, NULL, "data.format", "data.template", "data.max_len",
                                       "data.eval_fraction", "data.on_error"};
    lt_data_entry e = lt_data_entry_unset();
    char *path = NULL;
    unsigned seen = 0;
    lt_status st = LT_OK;
    for (int j = 0; j < s->n_kv && !st; j++) {
        const rv_scalar *key = &s->kv[2 * j], *val = &s->kv[2 * j + 1];
        char name[160], b[80];
        snprintf(name, sizeof name, "%s[%d].%s", k->name, item + 1, shown(key->text, b, sizeof b));
        int f = 0;
        while (fields[f] && strcmp(fields[f], key->text)) f++;
        if (!fields[f]) {
            const char *best = closest(key->text, fields);
            char hint[64] = "";
            if (best) snprintf(hint, sizeof hint, "did you mean '%s'? ", best);
            st = lt_recipe__fail(c, key->line, key->col, "%s: unknown field; hint: %san entry "
                                 "takes path, weight, format, template, max_len, eval_fraction "
                                 "and on_error", name, hint);
            break;
        }
        if (seen & 1u << f) {
            st = lt_recipe__fail(c, key->line, key->col, "%s is given twice", name);
            break;
        }
        seen |= 1u << f;
        if (val->null || !*val->text) {
            st = lt_recipe__fail(c, val->line, val->col, "%s has no value", name);
            break;
        }
        rk_key row = {.name = name, .type = RK_FLOAT, .flags = RF_MIN | RF_MIN_EXCL, .min = 0};
        if (rows[f]) {
            row = lt_recipe_keys[lt_recipe__find_full(rows[f])];
            row.name = name;
            row.def = NULL;
        }
        switch (f) {
        case 0: st = path_resolve(val->text, c, name, val->line, val->col, &path); break;
        case 1: st = parse_float(&row, name, val, c, &e.weight); break;
        case 2: st = parse_choice(&row, val, c, &e.format, "value"); break;
        case 3: e.template_name = lt_xstrdup(val->text); break;
        case 4: st = parse_int(&row, val, c, &e.max_len); break;
        case 5: st = parse_float(&row, name, val, c, &e.eval_fraction); break;
        default: st = parse_choice(&row, val, c, &e.on_error, "value"); break;
        }
    }
    if (!st && !path)
        st = lt_recipe__fail(c, s->line, s->col, "%s: item %d has no path; hint: write it as "
                             "{path: data/*.jsonl, weight: 0.5}", k->name, item + 1);
    if (st) {
        free(path);
        free(e.template_name);
        return st;
    }
    list_push(out, path);
    list_want_entries(out);
    out->entries[out->n - 1] = e;
    return LT_OK;
}

static lt_status parse_list(const rk_key *k, const rv_value *v, const rv_ctx *c, rv_parsed *out) {
    if (v->kind == RV_MAP)
        return lt_recipe__fail(c, v->s.line, v->s.col,
                               "%s: expected a list, got a mapping; hint: write [a, b] or one "
                               "'- item' per line",
                               k->name);
    int n = v->kind == RV_SEQ ? v->n : (v->s.null ? 0 : 1);
    const rv_scalar *items = v->kind == RV_SEQ ? v->items : &v->s;
    for (int i = 0; i < n; i++) {
        const rv_scalar *s = &items[i];
        lt_status st = LT_OK;
        if (s->kv && k->type != RK_PATHLIST) {
            st = lt_recipe__fail(c, s->line, s->col, "%s: item %d is a mapping; hint: this list "
                                 "holds plain values, e.g. [a, b]", k->name, i + 1);
        } else if (s->kv) {
            st = parse_entry(k, s, c, i, &out->list);
        } else if (s->null || !*s->text) {
            st = lt_recipe__fail(c, s->line, s->col,
                                 "%s: item %d is empty; hint: remove it or give a value", k->name,
                                 i + 1);
        } else if (k->choices) {
            int idx;
            st = parse_choice(k, s, c, &idx, "item");
            for (int j = 0; !st && j < out->list.n; j++)
                if (!strcmp(out->list.items[j], s->text))
                    st = lt_recipe__fail(c, s->line, s->col,
                                         "%s: '%s' is listed twice; hint: list each once", k->name,
                                         s->text);
            if (!st) list_push(&out->list, lt_xstrdup(s->text));
        } else if (k->type == RK_PATHLIST) {
            char *p;
            st = path_resolve(s->text, c, k->name, s->line, s->col, &p);
            if (!st) list_push(&out->list, p);
        } else {
            list_push(&out->list, lt_xstrdup(s->text));
        }
        if (st) {
            lt_recipe__parsed_free(out);
            return st;
        }
    }
    return LT_OK;
}

lt_status lt_recipe__parse(const rk_key *k, const rv_value *v, const rv_ctx *c, rv_parsed *out) {
    memset(out, 0, sizeof *out);
    if (k->type == RK_LIST || k->type == RK_PATHLIST) return parse_list(k, v, c, out);
    if (k->type == RK_FLOATPAIR) {
        if (v->kind != RV_SEQ || v->n != 2)
            return lt_recipe__fail(c, v->s.line, v->s.col,
                                   "%s: expected a list of two numbers, got %s; hint: write "
                                   "[0.9, 0.999]",
                                   k->name, v->kind == RV_SEQ ? "a list of another length"
                                                              : kind_name(v->kind));
        for (int i = 0; i < 2; i++) {
            if (v->items[i].null)
                return lt_recipe__fail(c, v->items[i].line, v->items[i].col,
                                       "%s: item %d is empty", k->name, i + 1);
            lt_status st = parse_float(k, k->pair[i], &v->items[i], c, &out->pair[i]);
            if (st) return st;
        }
        return LT_OK;
    }
    if (v->kind != RV_SCALAR)
        return lt_recipe__fail(c, v->s.line, v->s.col,
                               "%s: expected a single value, got %s; hint: check the indentation",
                               k->name, kind_name(v->kind));
    const rv_scalar *s = &v->s;
    if (s->null) {
        if (k->def)
            return lt_recipe__fail(c, s->line, s->col,
                                   "%s has no value; hint: give one, or remove the line to use "
                                   "the default (%s)",
                                   k->name, k->def);
        return lt_recipe__fail(c, s->line, s->col, "%s has no value; hint: give one", k->name);
    }
    switch (k->type) {
    case RK_STRING:
    case RK_PATH:
        if (!*s->text) return lt_recipe__fail(c, s->line, s->col, "%s is empty", k->name);
        if (k->type == RK_PATH) return path_resolve(s->text, c, k->name, s->line, s->col, &out->s);
        out->s = lt_xstrdup(s->text);
        return LT_OK;
    case RK_INT: return parse_int(k, s, c, &out->i);
    case RK_FLOAT: return parse_float(k, k->name, s, c, &out->d);
    case RK_BOOL: return parse_bool(k, s, c, &out->b);
    case RK_ENUM: return parse_choice(k, s, c, &out->e, "value");
    default: LT_ASSERT(0 && "unhandled key type");
    }
}

void lt_recipe__commit(lt_recipe *r, int idx, rv_parsed *p, lt_recipe_origin origin, int line,
                       int col) {
    const rk_key *k = &lt_recipe_keys[idx];
    void *f = (char *)r + k->off;
    switch (k->type) {
    case RK_STRING:
    case RK_PATH:
        free(*(char **)f);
        *(char **)f = p->s;
        p->s = NULL;
        break;
    case RK_INT: *(int64_t *)f = p->i; break;
    case RK_FLOAT: *(double *)f = p->d; break;
    case RK_BOOL: *(bool *)f = p->b; break;
    case RK_ENUM: *(int *)f = p->e; break;
    case RK_LIST:
    case RK_PATHLIST:
        lt_recipe_list_free((lt_recipe_list *)f);
        *(lt_recipe_list *)f = p->list;
        p->list = (lt_recipe_list){0};
        break;
    case RK_FLOATPAIR:
        for (int i = 0; i < 2; i++) {
            int t = lt_recipe__find_full(k->pair[i]);
            LT_ASSERT(t >= 0 && lt_recipe_keys[t].type == RK_FLOAT);
            *(double *)((char *)r + lt_recipe_keys[t].off) = p->pair[i];
            r->from[t].origin = (uint8_t)origin;
            r->from[t].line = line;
            r->from[t].col = col;
        }
        break;
    }
    r->from[idx].origin = (uint8_t)origin;
    r->from[idx].line = line;
    r->from[idx].col = col;
}

/* ---- defaults, free ----------------------------------------------------------------------- */

/* Implemented in recipe_load.c (needs libyaml): text -> value, as for --set. */
lt_status lt_recipe__value_from_text(const char *text, const rv_ctx *c, rv_value *v);
void lt_recipe__value_free(rv_value *v);

static void set_default(lt_recipe *r, int i) {
    const rk_key *k = &lt_recipe_keys[i];
    rv_ctx c = {.file = NULL, .set = NULL, .base_dir = "/"};
    rv_value v;
    rv_parsed p;
    LT_ASSERT(lt_recipe__value_from_text(k->def, &c, &v) == LT_OK);
    LT_ASSERT(lt_recipe__parse(k, &v, &c, &p) == LT_OK);
    lt_recipe__value_free(&v);
    lt_recipe__commit(r, i, &p, LT_RECIPE_DEFAULT, 0, 0);
    lt_recipe__parsed_free(&p);
}

void lt_recipe_defaults(lt_recipe *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < LT_RECIPE_NKEYS; i++)
        if (lt_recipe_keys[i].def) set_default(r, i);
}

void lt_recipe_free(lt_recipe *r) {
    if (!r) return;
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *k = &lt_recipe_keys[i];
        void *f = (char *)r + k->off;
        if (k->type == RK_STRING || k->type == RK_PATH) free(*(char **)f);
        if (k->type == RK_LIST || k->type == RK_PATHLIST)
            lt_recipe_list_free((lt_recipe_list *)f);
    }
    free(r->source);
    memset(r, 0, sizeof *r);
}

/* ---- overrides ---------------------------------------------------------------------------- */

/* Keys that decide the same thing: a --set of one resets the other's value from the file. */
static const char *const exclusive_pairs[][2] = {{"train.max_steps", "train.epochs"}};

lt_status lt_recipe_set(lt_recipe *r, const char *assignment) {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    rv_ctx c = {.file = NULL, .set = assignment, .base_dir = cwd};
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return lt_recipe__fail(&c, 0, 0,
                               "expected section.key=value; hint: e.g. --set optim.lr=1e-4");
    char name[256];
    size_t nl = (size_t)(eq - assignment);
    while (nl && isspace((unsigned char)assignment[nl - 1])) nl--;
    const char *ns = assignment;
    while (nl && isspace((unsigned char)*ns)) ns++, nl--;
    if (nl >= sizeof name) return lt_recipe__fail(&c, 0, 0, "key name too long");
    memcpy(name, ns, nl);
    name[nl] = 0;
    char *dot = strchr(name, '.');
    char hint[512];
    if (!dot) {
        lt_recipe__suggest_key("", name, hint, sizeof hint);
        return lt_recipe__fail(&c, 0, 0, "expected section.key before '='%s", hint);
    }
    *dot = 0;
    int idx = lt_recipe__find(name, strlen(name), dot + 1);
    if (idx < 0) {
        int sec_known = 0;
        for (int i = 0; i < LT_RECIPE_NKEYS; i++)
            if (!strncmp(lt_recipe_keys[i].name, name, strlen(name)) &&
                lt_recipe_keys[i].name[strlen(name)] == '.')
                sec_known = 1;
        if (sec_known) {
            lt_recipe__suggest_key(name, dot + 1, hint, sizeof hint);
            return lt_recipe__fail(&c, 0, 0, "unknown key '%s.%s'%s", name, dot + 1, hint);
        }
        lt_recipe__suggest_key(name, dot + 1, hint, sizeof hint);
        if (!hint[0]) lt_recipe__suggest_section(name, hint, sizeof hint);
        return lt_recipe__fail(&c, 0, 0, "unknown section '%s'%s", name, hint);
    }
    rv_value v;
    lt_status st = lt_recipe__value_from_text(eq + 1, &c, &v);
    if (st) return st;
    rv_parsed p;
    st = lt_recipe__parse(&lt_recipe_keys[idx], &v, &c, &p);
    lt_recipe__value_free(&v);
    if (st) return st;
    lt_recipe__commit(r, idx, &p, LT_RECIPE_FROM_SET, 0, 0);
    lt_recipe__parsed_free(&p);
    for (size_t i = 0; i < sizeof exclusive_pairs / sizeof exclusive_pairs[0]; i++)
        for (int j = 0; j < 2; j++) {
            if (strcmp(lt_recipe_keys[idx].name, exclusive_pairs[i][j])) continue;
            int other = lt_recipe__find_full(exclusive_pairs[i][1 - j]);
            if (r->from[other].origin == LT_RECIPE_FROM_FILE) set_default(r, other);
        }
    return LT_OK;
}
