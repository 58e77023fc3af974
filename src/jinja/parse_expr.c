/*
 * parse_expr.c — template expressions -> AST, with jinja2's operator precedence (see parser.c's
 * comment for the order and the node fields).
 */
#include "parse_impl.h"

static jnode *parse_unary(parser *P, bool with_filter);
static jnode *parse_primary(parser *P);
static jnode *parse_postfix(parser *P, jnode *n);
static jnode *parse_filters(parser *P, jnode *n);

/* Arguments of a call / filter / test: `(a, b, k=v)`; the '(' is current. */
void jp_parse_args(parser *P, jnode *n) {
    expect_op(P, "(");
    kidvec k = {0};
    size_t npos = 0;
    bool seen_kw = false;
    while (!is_op(cur(P), ")")) {
        if (k.n) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;
        if (cur(P)->kind == TK_NAME && P->i + 1 < P->n && is_op(&P->t[P->i + 1], "=")) {
            const char *nm = next(P)->s;
            next(P);
            kv_push(P, &k, jp_parse_expr(P), nm);
            seen_kw = true;
        } else {
            if (seen_kw) perr(P, cur(P), "positional argument after a keyword argument");
            kv_push(P, &k, jp_parse_expr(P), NULL);
            npos++;
        }
    }
    expect_op(P, ")");
    n->kids = k.v;
    n->kwnames = k.kw;
    n->nkids = k.n;
    n->nargs = npos;
}

jnode *jp_parse_tuple_or_expr(parser *P, bool allow_empty_end) {
    const jtok *at = cur(P);
    kidvec k = {0};
    bool is_tuple = false;
    for (;;) {
        if (k.n) {
            if (!skip_op(P, ",")) break;
            is_tuple = true;
        }
        const jtok *c = cur(P);
        if (k.n && (c->kind == TK_VAR_END || c->kind == TK_BLOCK_END || is_op(c, ")") ||
                    is_op(c, "=") || is_name(c, "in")))
            break;
        if (!k.n && allow_empty_end && is_op(c, ")")) {
            is_tuple = true;
            break;
        }
        kv_push(P, &k, jp_parse_expr(P), NULL);
    }
    if (!is_tuple) return k.v[0];
    jnode *t = mk(P, N_TUPLE, at);
    t->kids = k.v;
    t->nkids = k.n;
    return H(P, t);
}

static jnode *parse_primary(parser *P) {
    enter(P);
    const jtok *t = cur(P);
    jnode *n;
    if (t->kind == TK_NAME) {
        next(P);
        n = mk(P, N_LIT, t);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) n->lit = jv_bool(true);
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) n->lit = jv_bool(false);
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) n->lit = jv_none();
        else {
            n->kind = N_NAME;
            n->name = t->s;
            n->n_name = t->n;
        }
    } else if (t->kind == TK_STRING) {
        /* adjacent literals concatenate */
        size_t total = 0, j = P->i;
        while (j < P->n && P->t[j].kind == TK_STRING) total += P->t[j++].n;
        char *s = ja_alloc(P->a, total + 1), *w = s;
        while (cur(P)->kind == TK_STRING) {
            const jtok *q = next(P);
            memcpy(w, q->s, q->n);
            w += q->n;
        }
        n = mk(P, N_LIT, t);
        n->lit = jv_str_ref(s, total);
    } else if (t->kind == TK_INT) {
        next(P);
        n = mk(P, N_LIT, t);
        n->lit = jv_int(t->i);
    } else if (t->kind == TK_FLOAT) {
        next(P);
        n = mk(P, N_LIT, t);
        n->lit = jv_float(t->f);
    } else if (is_op(t, "(")) {
        next(P);
        if (is_op(cur(P), ")")) {
            next(P);
            n = mk(P, N_TUPLE, t);
        } else {
            n = jp_parse_tuple_or_expr(P, true);
            expect_op(P, ")");
        }
    } else if (is_op(t, "[")) {
        next(P);
        kidvec k = {0};
        while (!is_op(cur(P), "]")) {
            if (k.n) expect_op(P, ",");
            if (is_op(cur(P), "]")) break;
            kv_push(P, &k, jp_parse_expr(P), NULL);
        }
        expect_op(P, "]");
        n = mk(P, N_LIST, t);
        n->kids = k.v;
        n->nkids = k.n;
    } else if (is_op(t, "{")) {
        next(P);
        kidvec k = {0};
        while (!is_op(cur(P), "}")) {
            if (k.n) expect_op(P, ",");
            if (is_op(cur(P), "}")) break;
            kv_push(P, &k, jp_parse_expr(P), NULL);
            expect_op(P, ":");
            kv_push(P, &k, jp_parse_expr(P), NULL);
        }
        expect_op(P, "}");
        n = mk(P, N_DICT, t);
        n->kids = k.v;
        n->nkids = k.n;
    } else {
        perr(P, t, "unexpected %s in an expression", tok_desc(t));
    }
    leave(P);
    return H(P, n);
}

static jnode *parse_postfix(parser *P, jnode *n) {
    for (;;) {
        const jtok *t = cur(P);
        if (is_op(t, ".")) {
            next(P);
            const jtok *nm = next(P);
            if (nm->kind == TK_NAME) {
                jnode *x = mk(P, N_ATTR, t);
                x->a = n;
                x->name = nm->s;
                x->n_name = nm->n;
                n = H(P, x);
            } else if (nm->kind == TK_INT) {
                jnode *x = mk(P, N_ITEM, t), *k = mk(P, N_LIT, nm);
                k->lit = jv_int(nm->i);
                x->a = n;
                x->b = k;
                n = H(P, x);
            } else {
                perr(P, nm, "expected an attribute name after '.', got %s", tok_desc(nm));
            }
        } else if (is_op(t, "[")) {
            next(P);
            jnode *parts[3] = {NULL, NULL, NULL};
            int np = 0;
            bool slice = false;
            for (;;) {
                if (is_op(cur(P), ":")) {
                    next(P);
                    slice = true;
                    if (++np > 2) perr(P, cur(P), "too many ':' in a slice");
                    continue;
                }
                if (is_op(cur(P), "]")) break;
                if (parts[np]) perr(P, cur(P), "expected ':' or ']', got %s", tok_desc(cur(P)));
                parts[np] = slice ? jp_parse_expr(P) : jp_parse_tuple_or_expr(P, false);
            }
            expect_op(P, "]");
            if (slice) {
                jnode *x = mk(P, N_SLICE, t);
                x->a = n;
                x->b = parts[0];
                x->c = parts[1];
                x->d = parts[2];
                n = H(P, x);
            } else {
                if (!parts[0]) perr(P, t, "empty subscript");
                jnode *x = mk(P, N_ITEM, t);
                x->a = n;
                x->b = parts[0];
                n = H(P, x);
            }
        } else if (is_op(t, "(")) {
            jnode *x = mk(P, N_CALL, t);
            x->a = n;
            jp_parse_args(P, x);
            n = H(P, x);
        } else {
            return n;
        }
    }
}

static bool starts_primary(const jtok *t) {
    if (t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT) return true;
    if (t->kind == TK_NAME)
        return strcmp(t->s, "else") && strcmp(t->s, "or") && strcmp(t->s, "and") &&
               strcmp(t->s, "if") && strcmp(t->s, "in") && strcmp(t->s, "is") && strcmp(t->s, "not");
    return is_op(t, "[") || is_op(t, "{");
}

const char *jp_dotted_name(parser *P) {
    const jtok *t = cur(P);
    if (t->kind != TK_NAME) perr(P, t, "expected a filter or test name, got %s", tok_desc(t));
    next(P);
    return t->s;
}

static jnode *parse_filters(parser *P, jnode *n) {
    for (;;) {
        const jtok *t = cur(P);
        if (is_op(t, "|")) {
            next(P);
            jnode *f = mk(P, N_FILTER, cur(P));
            f->name = jp_dotted_name(P);
            f->a = n;
            if (is_op(cur(P), "(")) jp_parse_args(P, f);
            n = H(P, f);
        } else if (is_name(t, "is")) {
            next(P);
            bool neg = skip_name(P, "not");
            jnode *x = mk(P, N_TEST, cur(P));
            const jtok *nt = cur(P);
            /* `is none` / `is true` / `is false` arrive as names */
            if (nt->kind != TK_NAME) perr(P, nt, "expected a test name after 'is', got %s", tok_desc(nt));
            x->name = jp_dotted_name(P);
            x->a = n;
            x->negate = neg;
            if (is_op(cur(P), "(")) {
                jp_parse_args(P, x);
            } else if (starts_primary(cur(P))) {
                jnode *arg = parse_postfix(P, parse_primary(P));
                x->kids = ja_alloc(P->a, sizeof *x->kids);
                x->kids[0] = arg;
                x->nkids = x->nargs = 1;
            }
            n = H(P, x);
        } else if (is_op(t, "(")) {
            jnode *x = mk(P, N_CALL, t);
            x->a = n;
            jp_parse_args(P, x);
            n = H(P, x);
        } else {
            return n;
        }
    }
}

static jnode *parse_unary(parser *P, bool with_filter) {
    enter(P);
    const jtok *t = cur(P);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        next(P);
        n = mk(P, N_UNARY, t);
        n->name = t->s;
        n->a = H(P, parse_unary(P, false));
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) n = parse_filters(P, n);
    leave(P);
    return H(P, n);
}

static jnode *binary(parser *P, const jtok *t, jnode *l, jnode *r) {
    jnode *x = mk(P, N_BINARY, t);
    x->name = t->s;
    x->a = l;
    x->b = r;
    return H(P, x);
}

static jnode *parse_pow(parser *P) {
    jnode *l = parse_unary(P, true);
    while (is_op(cur(P), "**")) {
        const jtok *t = next(P);
        l = binary(P, t, l, parse_unary(P, true));
    }
    return l;
}
static jnode *parse_math2(parser *P) {
    jnode *l = parse_pow(P);
    while (is_op(cur(P), "*") || is_op(cur(P), "/") || is_op(cur(P), "//") || is_op(cur(P), "%")) {
        const jtok *t = next(P);
        l = binary(P, t, l, parse_pow(P));
    }
    return l;
}
static jnode *parse_concat(parser *P) {
    jnode *l = parse_math2(P);
    while (is_op(cur(P), "~")) {
        const jtok *t = next(P);
        l = binary(P, t, l, parse_math2(P));
    }
    return l;
}
static jnode *parse_math1(parser *P) {
    jnode *l = parse_concat(P);
    while (is_op(cur(P), "+") || is_op(cur(P), "-")) {
        const jtok *t = next(P);
        l = binary(P, t, l, parse_concat(P));
    }
    return l;
}
static jnode *parse_compare(parser *P) {
    const jtok *at = cur(P);
    jnode *first = parse_math1(P);
    kidvec k = {0};
    const char *opsbuf[64];
    size_t nops = 0;
    for (;;) {
        const jtok *t = cur(P);
        const char *op = NULL;
        if (t->kind == TK_OP && (!strcmp(t->s, "==") || !strcmp(t->s, "!=") || !strcmp(t->s, "<") ||
                                 !strcmp(t->s, "<=") || !strcmp(t->s, ">") || !strcmp(t->s, ">="))) {
            next(P);
            op = t->s;
        } else if (is_name(t, "in")) {
            next(P);
            op = "in";
        } else if (is_name(t, "not") && P->i + 1 < P->n && is_name(&P->t[P->i + 1], "in")) {
            next(P);
            next(P);
            op = "notin";
        } else {
            break;
        }
        if (nops == 64) perr(P, t, "too many chained comparisons");
        opsbuf[nops++] = op;
        kv_push(P, &k, parse_math1(P), NULL);
    }
    if (!nops) return first;
    jnode *x = mk(P, N_COMPARE, at);
    x->a = first;
    x->kids = k.v;
    x->nkids = k.n;
    x->ops = ja_alloc(P->a, nops * sizeof *x->ops);
    memcpy(x->ops, opsbuf, nops * sizeof *x->ops);
    return H(P, x);
}
static jnode *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        enter(P);
        const jtok *t = next(P);
        jnode *x = mk(P, N_NOT, t);
        x->a = parse_not(P);
        leave(P);
        return H(P, x);
    }
    return parse_compare(P);
}
static jnode *parse_and(parser *P) {
    jnode *l = parse_not(P);
    while (is_name(cur(P), "and")) {
        const jtok *t = next(P);
        jnode *x = mk(P, N_AND, t);
        x->a = l;
        x->b = parse_not(P);
        l = H(P, x);
    }
    return l;
}
jnode *jp_parse_or(parser *P) {
    jnode *l = parse_and(P);
    while (is_name(cur(P), "or")) {
        const jtok *t = next(P);
        jnode *x = mk(P, N_OR, t);
        x->a = l;
        x->b = parse_and(P);
        l = H(P, x);
    }
    return l;
}
jnode *jp_parse_expr(parser *P) {
    enter(P);
    jnode *l = jp_parse_or(P);
    while (is_name(cur(P), "if")) {
        const jtok *t = next(P);
        jnode *x = mk(P, N_COND, t);
        x->a = l;
        x->b = jp_parse_or(P);
        if (skip_name(P, "else")) x->c = jp_parse_expr(P);
        l = H(P, x);
    }
    leave(P);
    return l;
}

/* assignment target: name, name.attr, or a tuple of names */
jnode *jp_parse_target(parser *P, bool allow_attr) {
    const jtok *at = cur(P);
    kidvec k = {0};
    for (;;) {
        const jtok *t = cur(P);
        if (t->kind != TK_NAME) perr(P, t, "expected a variable name, got %s", tok_desc(t));
        next(P);
        jnode *x = mk(P, N_NAME, t);
        x->name = t->s;
        x->n_name = t->n;
        if (allow_attr && is_op(cur(P), ".")) {
            next(P);
            const jtok *a = cur(P);
            if (a->kind != TK_NAME) perr(P, a, "expected an attribute name, got %s", tok_desc(a));
            next(P);
            jnode *y = mk(P, N_ATTR, a);
            y->a = x;
            y->name = a->s;
            y->n_name = a->n;
            x = y;
        }
        kv_push(P, &k, x, NULL);
        if (!skip_op(P, ",")) break;
        if (cur(P)->kind != TK_NAME) break;
    }
    if (k.n == 1) return k.v[0];
    jnode *t = mk(P, N_TUPLE, at);
    t->kids = k.v;
    t->nkids = k.n;
    return t;
}

/* ---- statements ---------------------------------------------------------------------------- */
