/*
 * parser.c — tokens -> AST (jinja_impl.h jnode), with jinja2's operator precedence
 * (jinja2 3.1 parser.py, read for behaviour): ternary `a if c else b` < or < and < not <
 * comparisons (== != < <= > >= in, not in; chained) < + - < ~ < * / // % < ** < unary - + <
 * postfix (.attr, [item / slice], (call)) followed by filters `|f(args)` and tests `is [not] t`.
 *
 * Node fields per kind:
 *   N_TEXT lit | N_OUTPUT a=expr | N_IF a=cond b=body c=else (N_BODY or an N_IF for elif) |
 *   N_FOR a=target b=iterable c=body d=else kids[0]=inline `if` filter (nkids 0/1) |
 *   N_SET a=target b=value | N_SET_BLOCK a=target b=body c=filter chain (innermost a NULL) |
 *   N_MACRO name, kids=params (N_NAME, a=default or NULL), b=body |
 *   N_CALL_BLOCK a=call, kids=caller params, b=body | N_FILTER_BLOCK a=filter chain, b=body |
 *   N_BODY kids=statements.
 *   N_ATTR a=obj name | N_ITEM a=obj b=key | N_SLICE a=obj b,c,d=start,stop,step (NULL = none) |
 *   N_CALL a=callee | N_FILTER a=operand (NULL in a chain head) name | N_TEST a name negate
 *   (these three: kids = args, nargs positional, then keyword args named kwnames[i - nargs]) |
 *   N_UNARY/N_BINARY name=op a b | N_AND/N_OR a b | N_NOT a | N_COND a=then b=cond c=else |
 *   N_LIST/N_TUPLE kids | N_DICT kids=key,value,... | N_COMPARE a=first kids=operands ops.
 * Nesting deeper than MAX_DEPTH (statements or expressions) is a syntax error, so evaluation
 * recursion is bounded by construction.
 */
#include "jinja_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200
#define MAX_HEIGHT 1000 /* expression tree height: bounds the evaluator's recursion */

typedef struct {
    jarena *a;
    const jtok *t;
    size_t n, i;
    int depth;
    char err[256];
    int eline, ecol;
    jmp_buf jmp;
} parser;

_Noreturn static void perr(parser *P, const jtok *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr(parser *P, const jtok *at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err, sizeof P->err, fmt, ap);
    va_end(ap);
    P->eline = at->line;
    P->ecol = at->col;
    longjmp(P->jmp, 1);
}

static const jtok *cur(parser *P) { return &P->t[P->i < P->n ? P->i : P->n - 1]; }
static const jtok *next(parser *P) {
    const jtok *t = cur(P);
    if (P->i < P->n - 1) P->i++;
    return t;
}
static bool is_op(const jtok *t, const char *op) { return t->kind == TK_OP && strcmp(t->s, op) == 0; }
static bool is_name(const jtok *t, const char *nm) {
    return t->kind == TK_NAME && strcmp(t->s, nm) == 0;
}
static bool skip_op(parser *P, const char *op) {
    if (is_op(cur(P), op)) {
        next(P);
        return true;
    }
    return false;
}
static bool skip_name(parser *P, const char *nm) {
    if (is_name(cur(P), nm)) {
        next(P);
        return true;
    }
    return false;
}
static const char *tok_desc(const jtok *t) {
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "template text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_STRING: return "a string";
    case TK_INT:
    case TK_FLOAT: return "a number";
    default: return t->s ? t->s : "?";
    }
}
static void expect_op(parser *P, const char *op) {
    if (!skip_op(P, op)) perr(P, cur(P), "expected '%s', got %s", op, tok_desc(cur(P)));
}
static void expect_kind(parser *P, jtok_kind k, const char *what) {
    if (cur(P)->kind != k) perr(P, cur(P), "expected %s, got %s", what, tok_desc(cur(P)));
    next(P);
}

static jnode *mk(parser *P, jnode_kind k, const jtok *at) {
    jnode *n = ja_alloc(P->a, sizeof *n);
    n->kind = k;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* Set x's height from its children; a syntax error past MAX_HEIGHT (e.g. 1+1+1+... or a.b.c...
 * thousands long), so evaluation recursion stays bounded. */
static jnode *H(parser *P, jnode *x) {
    int h = 0;
    const jnode *ch[4] = {x->a, x->b, x->c, x->d};
    for (int i = 0; i < 4; i++)
        if (ch[i] && ch[i]->h > h) h = ch[i]->h;
    for (size_t i = 0; i < x->nkids; i++)
        if (x->kids[i] && x->kids[i]->h > h) h = x->kids[i]->h;
    x->h = h + 1;
    if (x->h > MAX_HEIGHT) {
        jtok at = {.line = x->line, .col = x->col};
        perr(P, &at, "expression nested too deeply (more than %d levels)", MAX_HEIGHT);
    }
    return x;
}

/* growable child list */
typedef struct {
    jnode **v;
    const char **kw;
    size_t n, cap;
} kidvec;
static void kv_push(parser *P, kidvec *k, jnode *x, const char *kw) {
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 4;
        jnode **nv = ja_alloc(P->a, nc * sizeof *nv);
        const char **nk = ja_alloc(P->a, nc * sizeof *nk);
        if (k->n) {
            memcpy(nv, k->v, k->n * sizeof *nv);
            memcpy(nk, k->kw, k->n * sizeof *nk);
        }
        k->v = nv;
        k->kw = nk;
        k->cap = nc;
    }
    k->kw[k->n] = kw;
    k->v[k->n++] = x;
}

static void enter(parser *P) {
    if (++P->depth > MAX_DEPTH) perr(P, cur(P), "template nested too deeply (more than %d levels)", MAX_DEPTH);
}
static void leave(parser *P) { P->depth--; }

static jnode *parse_expr(parser *P);
static jnode *parse_or(parser *P);
static jnode *parse_unary(parser *P, bool with_filter);
static jnode *parse_primary(parser *P);
static jnode *parse_postfix(parser *P, jnode *n);
static jnode *parse_filters(parser *P, jnode *n);

/* Arguments of a call / filter / test: `(a, b, k=v)`; the '(' is current. */
static void parse_args(parser *P, jnode *n) {
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
            kv_push(P, &k, parse_expr(P), nm);
            seen_kw = true;
        } else {
            if (seen_kw) perr(P, cur(P), "positional argument after a keyword argument");
            kv_push(P, &k, parse_expr(P), NULL);
            npos++;
        }
    }
    expect_op(P, ")");
    n->kids = k.v;
    n->kwnames = k.kw;
    n->nkids = k.n;
    n->nargs = npos;
}

static jnode *parse_tuple_or_expr(parser *P, bool allow_empty_end) {
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
        kv_push(P, &k, parse_expr(P), NULL);
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
            n = parse_tuple_or_expr(P, true);
            expect_op(P, ")");
        }
    } else if (is_op(t, "[")) {
        next(P);
        kidvec k = {0};
        while (!is_op(cur(P), "]")) {
            if (k.n) expect_op(P, ",");
            if (is_op(cur(P), "]")) break;
            kv_push(P, &k, parse_expr(P), NULL);
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
            kv_push(P, &k, parse_expr(P), NULL);
            expect_op(P, ":");
            kv_push(P, &k, parse_expr(P), NULL);
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
                parts[np] = slice ? parse_expr(P) : parse_tuple_or_expr(P, false);
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
            parse_args(P, x);
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

static const char *dotted_name(parser *P) {
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
            f->name = dotted_name(P);
            f->a = n;
            if (is_op(cur(P), "(")) parse_args(P, f);
            n = H(P, f);
        } else if (is_name(t, "is")) {
            next(P);
            bool neg = skip_name(P, "not");
            jnode *x = mk(P, N_TEST, cur(P));
            const jtok *nt = cur(P);
            /* `is none` / `is true` / `is false` arrive as names */
            if (nt->kind != TK_NAME) perr(P, nt, "expected a test name after 'is', got %s", tok_desc(nt));
            x->name = dotted_name(P);
            x->a = n;
            x->negate = neg;
            if (is_op(cur(P), "(")) {
                parse_args(P, x);
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
            parse_args(P, x);
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
static jnode *parse_or(parser *P) {
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
static jnode *parse_expr(parser *P) {
    enter(P);
    jnode *l = parse_or(P);
    while (is_name(cur(P), "if")) {
        const jtok *t = next(P);
        jnode *x = mk(P, N_COND, t);
        x->a = l;
        x->b = parse_or(P);
        if (skip_name(P, "else")) x->c = parse_expr(P);
        l = H(P, x);
    }
    leave(P);
    return l;
}

/* assignment target: name, name.attr, or a tuple of names */
static jnode *parse_target(parser *P, bool allow_attr) {
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

static jnode *parse_body(parser *P, const char *const *ends, const char **which);

static void end_block(parser *P) { expect_kind(P, TK_BLOCK_END, "'%}'"); }

static jnode *parse_filter_chain(parser *P) {
    jnode *head = NULL;
    do {
        jnode *f = mk(P, N_FILTER, cur(P));
        f->name = dotted_name(P);
        f->a = head;
        if (is_op(cur(P), "(")) parse_args(P, f);
        head = f;
    } while (skip_op(P, "|"));
    return head;
}

static void parse_macro_params(parser *P, jnode *m) {
    kidvec k = {0};
    expect_op(P, "(");
    while (!is_op(cur(P), ")")) {
        if (k.n) expect_op(P, ",");
        const jtok *t = cur(P);
        if (t->kind != TK_NAME) perr(P, t, "expected a parameter name, got %s", tok_desc(t));
        next(P);
        jnode *x = mk(P, N_NAME, t);
        x->name = t->s;
        x->n_name = t->n;
        if (skip_op(P, "=")) x->a = parse_expr(P);
        kv_push(P, &k, x, NULL);
    }
    expect_op(P, ")");
    m->kids = k.v;
    m->nkids = k.n;
}

static jnode *parse_stmt(parser *P) {
    const jtok *bt = cur(P);
    const jtok *t = cur(P);
    if (t->kind != TK_NAME) perr(P, t, "expected a statement name after '{%%', got %s", tok_desc(t));
    const char *kw = t->s;
    next(P);
    jnode *n;
    const char *which;
    if (!strcmp(kw, "if")) {
        n = mk(P, N_IF, bt);
        n->a = parse_tuple_or_expr(P, false);
        end_block(P);
        static const char *const E[] = {"elif", "else", "endif", NULL};
        n->b = parse_body(P, E, &which);
        jnode *tail = n;
        while (!strcmp(which, "elif")) {
            jnode *e = mk(P, N_IF, cur(P));
            e->a = parse_tuple_or_expr(P, false);
            end_block(P);
            e->b = parse_body(P, E, &which);
            tail->c = e;
            tail = e;
        }
        if (!strcmp(which, "else")) {
            end_block(P);
            static const char *const E2[] = {"endif", NULL};
            tail->c = parse_body(P, E2, &which);
        }
        end_block(P);
    } else if (!strcmp(kw, "for")) {
        n = mk(P, N_FOR, bt);
        n->a = parse_target(P, false);
        if (!skip_name(P, "in")) perr(P, cur(P), "expected 'in' in a for statement, got %s", tok_desc(cur(P)));
        /* the iterable: a tuple-or-expression without the ternary `if` (that is the filter) */
        n->b = parse_or(P);
        if (is_op(cur(P), ",")) {
            kidvec k = {0};
            kv_push(P, &k, n->b, NULL);
            while (skip_op(P, ",")) {
                if (is_name(cur(P), "if") || cur(P)->kind == TK_BLOCK_END) break;
                kv_push(P, &k, parse_or(P), NULL);
            }
            jnode *tu = mk(P, N_TUPLE, bt);
            tu->kids = k.v;
            tu->nkids = k.n;
            n->b = tu;
        }
        if (skip_name(P, "if")) {
            n->kids = ja_alloc(P->a, sizeof *n->kids);
            n->kids[0] = parse_expr(P);
            n->nkids = 1;
        }
        if (is_name(cur(P), "recursive")) perr(P, cur(P), "recursive for loops are not supported");
        end_block(P);
        static const char *const E[] = {"else", "endfor", NULL};
        n->c = parse_body(P, E, &which);
        if (!strcmp(which, "else")) {
            end_block(P);
            static const char *const E2[] = {"endfor", NULL};
            n->d = parse_body(P, E2, &which);
        }
        end_block(P);
    } else if (!strcmp(kw, "set")) {
        jnode *target = parse_target(P, true);
        if (skip_op(P, "=")) {
            n = mk(P, N_SET, bt);
            n->a = target;
            n->b = parse_tuple_or_expr(P, false);
            end_block(P);
        } else {
            n = mk(P, N_SET_BLOCK, bt);
            n->a = target;
            if (skip_op(P, "|")) n->c = parse_filter_chain(P);
            end_block(P);
            static const char *const E[] = {"endset", NULL};
            n->b = parse_body(P, E, &which);
            end_block(P);
        }
    } else if (!strcmp(kw, "macro")) {
        n = mk(P, N_MACRO, bt);
        const jtok *nm = cur(P);
        if (nm->kind != TK_NAME) perr(P, nm, "expected a macro name, got %s", tok_desc(nm));
        next(P);
        n->name = nm->s;
        n->n_name = nm->n;
        parse_macro_params(P, n);
        end_block(P);
        static const char *const E[] = {"endmacro", NULL};
        n->b = parse_body(P, E, &which);
        if (cur(P)->kind == TK_NAME) next(P); /* {% endmacro name %} */
        end_block(P);
    } else if (!strcmp(kw, "call")) {
        n = mk(P, N_CALL_BLOCK, bt);
        if (is_op(cur(P), "(")) parse_macro_params(P, n);
        n->a = parse_expr(P);
        if (n->a->kind != N_CALL) perr(P, bt, "expected a call after 'call'");
        end_block(P);
        static const char *const E[] = {"endcall", NULL};
        n->b = parse_body(P, E, &which);
        end_block(P);
    } else if (!strcmp(kw, "filter")) {
        n = mk(P, N_FILTER_BLOCK, bt);
        n->a = parse_filter_chain(P);
        end_block(P);
        static const char *const E[] = {"endfilter", NULL};
        n->b = parse_body(P, E, &which);
        end_block(P);
    } else if (!strcmp(kw, "generation")) {
        end_block(P);
        static const char *const E[] = {"endgeneration", NULL};
        n = parse_body(P, E, &which);
        end_block(P);
    } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        n = mk(P, kw[0] == 'b' ? N_BREAK : N_CONTINUE, bt);
        end_block(P);
    } else if (!strcmp(kw, "include") || !strcmp(kw, "import") || !strcmp(kw, "from") ||
               !strcmp(kw, "extends") || !strcmp(kw, "block")) {
        perr(P, t, "'%s' is not available in a chat template (no template loader in the sandbox)", kw);
    } else {
        perr(P, t, "unknown statement '%s'", kw);
    }
    return n;
}

/* Statements up to a {% NAME %} in `ends` (NULL-terminated; NULL list = until EOF). On return
 * *which is the end name and the current token is what follows it (usually '%}'). */
static jnode *parse_body(parser *P, const char *const *ends, const char **which) {
    enter(P);
    const jtok *at = cur(P);
    kidvec k = {0};
    for (;;) {
        const jtok *t = cur(P);
        if (t->kind == TK_EOF) {
            if (ends) {
                size_t last = 0;
                while (ends[last + 1]) last++;
                perr(P, t, "unexpected end of template: expected '{%% %s %%}'", ends[last]);
            }
            break;
        }
        if (t->kind == TK_TEXT) {
            next(P);
            jnode *x = mk(P, N_TEXT, t);
            x->lit = jv_str_ref(t->s, t->n);
            kv_push(P, &k, x, NULL);
        } else if (t->kind == TK_VAR_BEGIN) {
            next(P);
            jnode *x = mk(P, N_OUTPUT, t);
            x->a = parse_tuple_or_expr(P, false);
            expect_kind(P, TK_VAR_END, "'}}'");
            kv_push(P, &k, x, NULL);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            const jtok *nm = &P->t[P->i + 1 < P->n ? P->i + 1 : P->i];
            if (ends && nm->kind == TK_NAME) {
                for (size_t e = 0; ends[e]; e++)
                    if (!strcmp(nm->s, ends[e])) {
                        next(P);
                        next(P);
                        *which = ends[e];
                        goto done;
                    }
            }
            if (nm->kind == TK_NAME && !strncmp(nm->s, "end", 3) && strcmp(nm->s, "endraw"))
                perr(P, nm, "unexpected '{%% %s %%}'%s%s", nm->s, ends ? "; expected " : "",
                     ends ? ends[0] : "");
            if (nm->kind == TK_NAME && (!strcmp(nm->s, "elif") || !strcmp(nm->s, "else")))
                perr(P, nm, "unexpected '{%% %s %%}' outside an if/for", nm->s);
            next(P);
            kv_push(P, &k, parse_stmt(P), NULL);
        } else {
            perr(P, t, "unexpected %s", tok_desc(t));
        }
    }
done:;
    jnode *b = mk(P, N_BODY, at);
    b->kids = k.v;
    b->nkids = k.n;
    leave(P);
    return b;
}

bool jparse(jarena *a, const jtok *toks, size_t ntok, jnode **root, char **err, int *eline,
            int *ecol) {
    parser *P = ja_alloc(a, sizeof *P);
    P->a = a;
    P->t = toks;
    P->n = ntok;
    if (setjmp(P->jmp)) {
        *err = ja_strndup(a, P->err, strlen(P->err));
        *eline = P->eline;
        *ecol = P->ecol;
        return false;
    }
    const char *which = NULL;
    *root = parse_body(P, NULL, &which);
    return true;
}
