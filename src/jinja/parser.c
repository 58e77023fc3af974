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
#include "parse_impl.h"

static jnode *parse_body(parser *P, const char *const *ends, const char **which);

static void end_block(parser *P) { expect_kind(P, TK_BLOCK_END, "'%}'"); }

static jnode *parse_filter_chain(parser *P) {
    jnode *head = NULL;
    do {
        jnode *f = mk(P, N_FILTER, cur(P));
        f->name = jp_dotted_name(P);
        f->a = head;
        if (is_op(cur(P), "(")) jp_parse_args(P, f);
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
        if (skip_op(P, "=")) x->a = jp_parse_expr(P);
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
        n->a = jp_parse_tuple_or_expr(P, false);
        end_block(P);
        static const char *const E[] = {"elif", "else", "endif", NULL};
        n->b = parse_body(P, E, &which);
        jnode *tail = n;
        while (!strcmp(which, "elif")) {
            jnode *e = mk(P, N_IF, cur(P));
            e->a = jp_parse_tuple_or_expr(P, false);
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
        n->a = jp_parse_target(P, false);
        if (!skip_name(P, "in")) perr(P, cur(P), "expected 'in' in a for statement, got %s", tok_desc(cur(P)));
        /* the iterable: a tuple-or-expression without the ternary `if` (that is the filter) */
        n->b = jp_parse_or(P);
        if (is_op(cur(P), ",")) {
            kidvec k = {0};
            kv_push(P, &k, n->b, NULL);
            while (skip_op(P, ",")) {
                if (is_name(cur(P), "if") || cur(P)->kind == TK_BLOCK_END) break;
                kv_push(P, &k, jp_parse_or(P), NULL);
            }
            jnode *tu = mk(P, N_TUPLE, bt);
            tu->kids = k.v;
            tu->nkids = k.n;
            n->b = tu;
        }
        if (skip_name(P, "if")) {
            n->kids = ja_alloc(P->a, sizeof *n->kids);
            n->kids[0] = jp_parse_expr(P);
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
        jnode *target = jp_parse_target(P, true);
        if (skip_op(P, "=")) {
            n = mk(P, N_SET, bt);
            n->a = target;
            n->b = jp_parse_tuple_or_expr(P, false);
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
        n->a = jp_parse_expr(P);
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
            x->a = jp_parse_tuple_or_expr(P, false);
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
