/*
 * parse_impl.h — what the two halves of the template parser share (parse_expr.c: expressions,
 * parser.c: statements and the entry point): the parser state, its token cursor and error
 * helpers (header-only, static inline), and the expression entry points. Private to src/jinja.
 */
#ifndef LT_JINJA_PARSE_IMPL_H
#define LT_JINJA_PARSE_IMPL_H

#include "jinja_impl.h"

#include <stdarg.h>
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

_Noreturn static inline void perr(parser *P, const jtok *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void perr(parser *P, const jtok *at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err, sizeof P->err, fmt, ap);
    va_end(ap);
    P->eline = at->line;
    P->ecol = at->col;
    longjmp(P->jmp, 1);
}

static inline const jtok *cur(parser *P) { return &P->t[P->i < P->n ? P->i : P->n - 1]; }
static inline const jtok *next(parser *P) {
    const jtok *t = cur(P);
    if (P->i < P->n - 1) P->i++;
    return t;
}
static inline bool is_op(const jtok *t, const char *op) { return t->kind == TK_OP && strcmp(t->s, op) == 0; }
static inline bool is_name(const jtok *t, const char *nm) {
    return t->kind == TK_NAME && strcmp(t->s, nm) == 0;
}
static inline bool skip_op(parser *P, const char *op) {
    if (is_op(cur(P), op)) {
        next(P);
        return true;
    }
    return false;
}
static inline bool skip_name(parser *P, const char *nm) {
    if (is_name(cur(P), nm)) {
        next(P);
        return true;
    }
    return false;
}
static inline const char *tok_desc(const jtok *t) {
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
static inline void expect_op(parser *P, const char *op) {
    if (!skip_op(P, op)) perr(P, cur(P), "expected '%s', got %s", op, tok_desc(cur(P)));
}
static inline void expect_kind(parser *P, jtok_kind k, const char *what) {
    if (cur(P)->kind != k) perr(P, cur(P), "expected %s, got %s", what, tok_desc(cur(P)));
    next(P);
}

static inline jnode *mk(parser *P, jnode_kind k, const jtok *at) {
    jnode *n = ja_alloc(P->a, sizeof *n);
    n->kind = k;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* Set x's height from its children; a syntax error past MAX_HEIGHT (e.g. 1+1+1+... or a.b.c...
 * thousands long), so evaluation recursion stays bounded. */
static inline jnode *H(parser *P, jnode *x) {
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
static inline void kv_push(parser *P, kidvec *k, jnode *x, const char *kw) {
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

static inline void enter(parser *P) {
    if (++P->depth > MAX_DEPTH) perr(P, cur(P), "template nested too deeply (more than %d levels)", MAX_DEPTH);
}
static inline void leave(parser *P) { P->depth--; }

/* Expressions (parse_expr.c). jp_parse_expr: a full expression, ternary included; jp_parse_or:
 * one without the ternary (for targets of `in` and inline ifs); jp_parse_args: a call's
 * "(args)" into n's kids; jp_parse_tuple_or_expr: "a, b" as a tuple, else one expression;
 * jp_parse_target: an assignment target (name, tuple of names, or a.attr when allow_attr);
 * jp_dotted_name: "a.b.c" as one arena string. All longjmp to P->jmp on a syntax error. */
jnode *jp_parse_expr(parser *P);
jnode *jp_parse_or(parser *P);
void jp_parse_args(parser *P, jnode *n);
jnode *jp_parse_tuple_or_expr(parser *P, bool allow_empty_end);
jnode *jp_parse_target(parser *P, bool allow_attr);
const char *jp_dotted_name(parser *P);

#endif
