/*
 * recipe_load — YAML input: recipe files through libyaml's document API (line:column marks on
 * every node), and single values (--set, table defaults) into rv_value.
 *
 * A recipe file is one document whose root is a mapping of sections, each a mapping of keys (a
 * section with no keys, `lora:`, is allowed). Values are scalars or sequences of scalars.
 * Anchors and aliases are resolved by libyaml and are therefore allowed.
 */
#include "recipe/recipe_impl.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

lt_status lt_recipe__value_from_text(const char *text, const rv_ctx *c, rv_value *v);
void lt_recipe__value_free(rv_value *v);

static bool scalar_is_null(const yaml_node_t *n) {
    if (n->tag && !strcmp((const char *)n->tag, YAML_NULL_TAG)) return true;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *t = (const char *)n->data.scalar.value;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

static rv_scalar scalar_of(const yaml_node_t *n) {
    return (rv_scalar){.text = (const char *)n->data.scalar.value,
                       .null = scalar_is_null(n),
                       .line = (int)n->start_mark.line + 1,
                       .col = (int)n->start_mark.column + 1};
}

static const char *node_kind(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "a single value";
    }
}

/* Node -> rv_value; items (if any) are malloc'ed, texts point into the document. */
static lt_status value_of_node(yaml_document_t *doc, yaml_node_t *n, const rv_ctx *c,
                               const char *key, rv_value *v) {
    memset(v, 0, sizeof *v);
    v->s.line = (int)n->start_mark.line + 1;
    v->s.col = (int)n->start_mark.column + 1;
    v->s.text = "";
    if (n->type == YAML_SCALAR_NODE) {
        v->kind = RV_SCALAR;
        v->s = scalar_of(n);
        return LT_OK;
    }
    if (n->type == YAML_MAPPING_NODE) {
        v->kind = RV_MAP;
        return LT_OK;
    }
    v->kind = RV_SEQ;
    int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    v->items = lt_xcalloc((size_t)count + 1, sizeof *v->items);
    v->n = count;
    for (int i = 0; i < count; i++) {
        yaml_node_t *it = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        const yaml_node_t *bad = it && it->type == YAML_SEQUENCE_NODE ? it : NULL;
        if (it && it->type == YAML_MAPPING_NODE) { /* a flat mapping item: {path: a, weight: 1} */
            v->items[i] = scalar_of(it);
            v->items[i].text = "";
            v->items[i].null = false;
            yaml_node_pair_t *p0 = it->data.mapping.pairs.start, *p1 = it->data.mapping.pairs.top;
            v->items[i].kv = lt_xcalloc((size_t)(p1 - p0) * 2 + 1, sizeof(rv_scalar));
            for (yaml_node_pair_t *p = p0; p < p1 && !bad; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);
                yaml_node_t *x = yaml_document_get_node(doc, p->value);
                if (!k || k->type != YAML_SCALAR_NODE) bad = k ? k : it;
                else if (!x || x->type != YAML_SCALAR_NODE) bad = x ? x : it;
                else {
                    v->items[i].kv[2 * v->items[i].n_kv] = scalar_of(k);
                    v->items[i].kv[2 * v->items[i].n_kv++ + 1] = scalar_of(x);
                }
            }
        } else if (it && it->type == YAML_SCALAR_NODE) {
            v->items[i] = scalar_of(it);
        } else if (!bad) {
            bad = it;
        }
        if (bad || !it) {
            int line = bad ? (int)bad->start_mark.line + 1 : v->s.line;
            int col = bad ? (int)bad->start_mark.column + 1 : v->s.col;
            lt_status st = lt_recipe__fail(c, line, col,
                                           "%s: item %d %s %s, expected a single value; hint: a "
                                           "list holds plain values, e.g. [a, b] (data.train and "
                                           "data.eval items may also be {path: ..., weight: ...})",
                                           key, i + 1, bad && bad != it ? "holds" : "is",
                                           bad ? node_kind(bad) : "missing");
            v->n = i + 1;
            lt_recipe__items_free(v);
            return st;
        }
    }
    return LT_OK;
}

void lt_recipe__items_free(rv_value *v) {
    for (int i = 0; v->items && i < v->n; i++) free(v->items[i].kv);
    free(v->items);
    v->items = NULL;
    v->n = 0;
}

/* The texts of s (and of its mapping pairs) copied out of the YAML document, marks cleared. */
static void scalar_own(rv_scalar *s) {
    s->text = lt_xstrdup(s->text);
    s->line = s->col = 0;
    for (int j = 0; j < 2 * s->n_kv; j++) {
        s->kv[j].text = lt_xstrdup(s->kv[j].text);
        s->kv[j].line = s->kv[j].col = 0;
    }
}

/* ---- single values (--set, defaults) ------------------------------------------------------ */

static lt_status yaml_problem(const yaml_parser_t *p, const rv_ctx *c, const char *what,
                              const char *buf) {
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset, not a mark */
        line = 1, col = 1;
        for (size_t i = 0; buf && i < p->problem_offset && buf[i]; i++) {
            if (buf[i] == '\n') line++, col = 1;
            else col++;
        }
    }
    char ctx[160] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at %d:%d)", p->context, (int)p->context_mark.line + 1,
                 (int)p->context_mark.column + 1);
    bool tab = buf && p->error == YAML_SCANNER_ERROR && p->problem_mark.index < strlen(buf) &&
               buf[p->problem_mark.index] == '\t';
    return lt_recipe__fail(c, line, col, "%s: %s%s; hint: %s", what,
                           p->problem ? p->problem : "cannot parse", ctx,
                           tab ? "indent with spaces: YAML does not allow tabs"
                               : "check the indentation, colons and quoting near here");
}

lt_status lt_recipe__value_from_text(const char *text, const rv_ctx *c, rv_value *v) {
    memset(v, 0, sizeof *v);
    while (isspace((unsigned char)*text)) text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    char *t = lt_xmalloc(len + 1);
    memcpy(t, text, len);
    t[len] = 0;
    v->kind = RV_SCALAR;
    if (!len || (t[0] != '[' && t[0] != '"' && t[0] != '\'')) {
        v->s.text = t;
        v->s.null = len == 0;
        return LT_OK;
    }
    yaml_parser_t p;
    yaml_document_t doc;
    LT_ASSERT(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)t, len);
    if (!yaml_parser_load(&p, &doc)) {
        lt_status st = yaml_problem(&p, c, "bad value", t);
        yaml_parser_delete(&p);
        free(t);
        return st;
    }
    lt_status st = LT_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    rv_value tmp;
    if (!root) {
        v->s.text = lt_xstrdup("");
        v->s.null = true;
    } else if ((st = value_of_node(&doc, root, c, "value", &tmp)) == LT_OK) {
        if (tmp.kind == RV_MAP) {
            st = lt_recipe__fail(c, 0, 0, "expected a value or [a, b] list, got a mapping");
            lt_recipe__items_free(&tmp);
        } else {
            /* copy the texts out of the document */
            v->kind = tmp.kind;
            v->s = tmp.s;
            v->n = tmp.n;
            v->items = tmp.items;
            scalar_own(&v->s);
            for (int i = 0; i < v->n; i++) scalar_own(&v->items[i]);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    free(t);
    if (st) memset(v, 0, sizeof *v);
    return st;
}

void lt_recipe__value_free(rv_value *v) {
    free((char *)v->s.text);
    for (int i = 0; i < v->n; i++) {
        free((char *)v->items[i].text);
        for (int j = 0; j < 2 * v->items[i].n_kv; j++) free((char *)v->items[i].kv[j].text);
    }
    lt_recipe__items_free(v);
    memset(v, 0, sizeof *v);
}

/* ---- files -------------------------------------------------------------------------------- */

typedef struct {
    lt_recipe *r;
    yaml_document_t *doc;
    rv_ctx c;
    int seen_line[LT_RECIPE_NKEYS]; /* line where each key was set in this file; 0 = not yet */
    int seen_by[LT_RECIPE_NKEYS];   /* the key (row) that set it: itself or a synonym */
} loader;

static int key_index_of(const char *name) {
    const char *dot = strchr(name, '.');
    return dot ? lt_recipe__find(name, (size_t)(dot - name), dot + 1) : -1;
}

static bool section_known(const char *s) {
    size_t l = strlen(s);
    for (int i = 0; i < LT_RECIPE_NKEYS; i++)
        if (!strncmp(lt_recipe_keys[i].name, s, l) && lt_recipe_keys[i].name[l] == '.')
            return true;
    return false;
}

static lt_status load_key(loader *L, const char *section, yaml_node_t *kn, yaml_node_t *vn) {
    const rv_ctx *c = &L->c;
    int kl = (int)kn->start_mark.line + 1, kc = (int)kn->start_mark.column + 1;
    if (kn->type != YAML_SCALAR_NODE)
        return lt_recipe__fail(c, kl, kc, "a key in section '%s' is %s, expected a name",
                               section, node_kind(kn));
    const char *key = (const char *)kn->data.scalar.value;
    int idx = lt_recipe__find(section, strlen(section), key);
    char hint[512], sub[256];
    snprintf(sub, sizeof sub, "%s.%s", section, key);
    if (idx < 0 && section_known(sub)) { /* a subsection: output.gate's {metric: ...} */
        if (vn->type == YAML_SCALAR_NODE && scalar_is_null(vn)) return LT_OK;
        if (vn->type != YAML_MAPPING_NODE)
            return lt_recipe__fail(c, (int)vn->start_mark.line + 1,
                                   (int)vn->start_mark.column + 1,
                                   "'%s' must be a mapping of keys, got %s; hint: e.g. %s: "
                                   "{metric: eval_loss}", sub, node_kind(vn), key);
        yaml_node_pair_t *p0 = vn->data.mapping.pairs.start, *p1 = vn->data.mapping.pairs.top;
        for (yaml_node_pair_t *p = p0; p < p1; p++) {
            lt_status st = load_key(L, sub, yaml_document_get_node(L->doc, p->key),
                                    yaml_document_get_node(L->doc, p->value));
            if (st) return st;
        }
        return LT_OK;
    }
    if (idx < 0 && section_known(key))
        return lt_recipe__fail(c, kl, kc,
                               "unknown key '%s.%s': '%s' is a section; hint: move '%s:' to the "
                               "top level (no indentation)",
                               section, key, key, key);
    if (idx < 0) {
        lt_recipe__suggest_key(section, key, hint, sizeof hint);
        return lt_recipe__fail(c, kl, kc, "unknown key '%s.%s'%s", section, key, hint);
    }
    const rk_key *k = &lt_recipe_keys[idx];
    /* a synonym and the keys it writes count as one key for the duplicate check */
    int marks[2] = {-1, -1}, alias = -1;
    if (k->type == RK_FLOATPAIR) {
        marks[0] = key_index_of(k->pair[0]);
        marks[1] = key_index_of(k->pair[1]);
    }
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *a = &lt_recipe_keys[i];
        if (a->type == RK_FLOATPAIR &&
            (!strcmp(a->pair[0], k->name) || !strcmp(a->pair[1], k->name)))
            alias = i;
    }
    int check[4] = {idx, marks[0], marks[1], alias};
    for (int j = 0; j < 4; j++) {
        int o = check[j];
        if (o < 0 || !L->seen_line[o]) continue;
        int by = L->seen_by[o];
        if (by == idx)
            return lt_recipe__fail(c, kl, kc,
                                   "duplicate key '%s' (first set at line %d); hint: keep one "
                                   "of them",
                                   k->name, L->seen_line[o]);
        return lt_recipe__fail(c, kl, kc,
                               "%s repeats %s set at line %d; hint: keep one of them", k->name,
                               lt_recipe_keys[by].name, L->seen_line[o]);
    }
    rv_value v;
    lt_status st = value_of_node(L->doc, vn, c, k->name, &v);
    if (st) return st;
    rv_parsed p;
    st = lt_recipe__parse(k, &v, c, &p);
    lt_recipe__items_free(&v);
    if (st) return st;
    lt_recipe__commit(L->r, idx, &p, LT_RECIPE_FROM_FILE, kl, kc);
    lt_recipe__parsed_free(&p);
    int set[3] = {idx, marks[0], marks[1]};
    for (int j = 0; j < 3; j++)
        if (set[j] >= 0) L->seen_line[set[j]] = kl, L->seen_by[set[j]] = idx;
    return LT_OK;
}

static lt_status load_root(loader *L, yaml_node_t *root) {
    const rv_ctx *c = &L->c;
    int rl = (int)root->start_mark.line + 1, rc = (int)root->start_mark.column + 1;
    if (root->type != YAML_MAPPING_NODE) {
        if (root->type == YAML_SCALAR_NODE && scalar_is_null(root)) return LT_OK; /* empty */
        return lt_recipe__fail(c, rl, rc,
                               "expected a mapping of sections (model:, lora:, data:, ...), got "
                               "%s; hint: see recipes/*.yaml for the layout",
                               node_kind(root));
    }
    yaml_node_pair_t *pairs = root->data.mapping.pairs.start;
    int np = (int)(root->data.mapping.pairs.top - pairs);
    for (int i = 0; i < np; i++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pairs[i].key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, pairs[i].value);
        int kl = (int)kn->start_mark.line + 1, kc = (int)kn->start_mark.column + 1;
        if (kn->type != YAML_SCALAR_NODE)
            return lt_recipe__fail(c, kl, kc, "a section name is %s, expected a name",
                                   node_kind(kn));
        const char *sec = (const char *)kn->data.scalar.value;
        char hint[512];
        if (!section_known(sec)) {
            lt_recipe__suggest_section(sec, hint, sizeof hint);
            return lt_recipe__fail(c, kl, kc, "unknown section '%s'%s", sec, hint);
        }
        for (int j = 0; j < i; j++) {
            yaml_node_t *pk = yaml_document_get_node(L->doc, pairs[j].key);
            if (!strcmp((const char *)pk->data.scalar.value, sec))
                return lt_recipe__fail(c, kl, kc,
                                       "duplicate section '%s' (first at line %d); hint: merge "
                                       "the two into one",
                                       sec, (int)pk->start_mark.line + 1);
        }
        if (vn->type == YAML_SCALAR_NODE && scalar_is_null(vn)) continue; /* "lora:" alone */
        if (vn->type != YAML_MAPPING_NODE)
            return lt_recipe__fail(c, (int)vn->start_mark.line + 1,
                                   (int)vn->start_mark.column + 1,
                                   "section '%s' must be a mapping of keys, got %s; hint: put "
                                   "its keys on the following lines, indented under '%s:'",
                                   sec, node_kind(vn), sec);
        yaml_node_pair_t *kp = vn->data.mapping.pairs.start;
        int nk = (int)(vn->data.mapping.pairs.top - kp);
        for (int j = 0; j < nk; j++) {
            lt_status st = load_key(L, sec, yaml_document_get_node(L->doc, kp[j].key),
                                    yaml_document_get_node(L->doc, kp[j].value));
            if (st) return st;
        }
    }
    return LT_OK;
}

lt_status lt_recipe_load(lt_recipe *r, const char *path) {
    lt_recipe_defaults(r);
    r->source = lt_xstrdup(path);
    rv_ctx c0 = {.file = path};
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lt_recipe__fail(&c0, 0, 0, "cannot read recipe: %s; hint: check the path",
                               strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return lt_recipe__fail(&c0, 0, 0, "is a directory, not a recipe file");
    char *buf = NULL;
    size_t n = 0;
    if (lt_read_file(path, &buf, &n) != LT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lt_error_message());
        return lt_error_set(LT_ERR_RECIPE, "cannot read recipe: %s", msg);
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    loader L = {.r = r, .c = {.file = path, .set = NULL, .base_dir = dirname(real)}};

    yaml_parser_t p;
    yaml_document_t doc;
    LT_ASSERT(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, n);
    lt_status st = LT_OK;
    if (!yaml_parser_load(&p, &doc)) {
        st = yaml_problem(&p, &L.c, "YAML syntax error", buf);
    } else {
        L.doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root) st = load_root(&L, root);
        if (!st && root) {
            yaml_document_t doc2;
            if (!yaml_parser_load(&p, &doc2)) {
                st = yaml_problem(&p, &L.c, "YAML syntax error", buf);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
                if (r2)
                    st = lt_recipe__fail(&L.c, (int)doc2.start_mark.line + 1,
                                         (int)doc2.start_mark.column + 1,
                                         "a second YAML document; hint: a recipe is one "
                                         "document, remove the '---' line and merge");
                yaml_document_delete(&doc2);
            }
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    free(buf);
    return st;
}
