/*
 * lexer.c — template source -> tokens, with jinja2's whitespace control as transformers
 * configures it (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False).
 *
 * Facts (jinja2 3.1 lexer.py, read for behaviour only):
 *  - every line break (\r\n, \r, \n) becomes \n, and one trailing \n of the source is dropped;
 *  - `{%-` / `{{-` / `{#-` strip all whitespace (Python str.isspace) before the tag; `-%}` /
 *    `-}}` / `-#}` strip all whitespace after it;
 *  - trim_blocks: `%}` and `#}` (without `-` or `+`) eat one \n directly after them;
 *  - lstrip_blocks: before `{%` / `{#` (without `-`/`+`), spaces and tabs (any whitespace) from
 *    the start of the line up to the tag are removed when nothing else is on that line before the
 *    tag — "start of the line" being after a \n in the text, or the text's start when the
 *    previous tag ended with \n or this is the start of the template;
 *  - `{% raw %}...{% endraw %}` is text; `{{`/`{%` inside strings do not end a tag, and a `}}`
 *    or `%}` while brackets are open is an operator;
 *  - string literals: '...' or "..." with Python escapes (\n \t \\ \' \" \xNN \uNNNN \UNNNNNNNN
 *    \ooo \a \b \f \v \r; an unknown escape keeps its backslash).
 */
#include "jinja_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jarena *a;
    const char *s; /* normalized source */
    size_t n;
    size_t lc_pos; /* line/col cursor */
    int lc_line, lc_col;
    jtok *toks;
    size_t ntok, cap;
    char *err;
    int eline, ecol;
} lexer;

static void linecol(lexer *L, size_t pos, int *line, int *col) {
    if (pos < L->lc_pos) { /* rewind (rare): recount */
        L->lc_pos = 0;
        L->lc_line = 1;
        L->lc_col = 1;
    }
    while (L->lc_pos < pos && L->lc_pos < L->n) {
        if (L->s[L->lc_pos] == '\n') {
            L->lc_line++;
            L->lc_col = 1;
        } else if (((unsigned char)L->s[L->lc_pos] & 0xC0) != 0x80) {
            L->lc_col++;
        }
        L->lc_pos++;
    }
    *line = L->lc_line;
    *col = L->lc_col;
}

static bool lex_error(lexer *L, size_t pos, const char *msg) {
    linecol(L, pos, &L->eline, &L->ecol);
    L->err = ja_strndup(L->a, msg, strlen(msg));
    return false;
}

static jtok *push(lexer *L, jtok_kind k, size_t pos) {
    if (L->ntok == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 64;
        jtok *nt = ja_alloc(L->a, nc * sizeof *nt);
        if (L->ntok) memcpy(nt, L->toks, L->ntok * sizeof *nt);
        L->toks = nt;
        L->cap = nc;
    }
    jtok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = k;
    linecol(L, pos, &t->line, &t->col);
    return t;
}

static void push_text(lexer *L, size_t pos, const char *p, size_t n) {
    if (n == 0) return;
    jtok *t = push(L, TK_TEXT, pos);
    t->s = ja_strndup(L->a, p, n);
    t->n = n;
}

/* Length of text[0..n) after removing trailing whitespace (Python str.rstrip()). */
static size_t rstrip_len(const char *p, size_t n) {
    size_t k;
    while (n > 0 && (k = ju_space_before(p, n)) > 0) n -= k;
    return n;
}

/* lstrip_blocks: text[0..n) shortened when only whitespace follows its last \n (or its start,
 * when line_starting). */
static size_t lstrip_len(const char *p, size_t n, bool line_starting) {
    size_t l = n;
    while (l > 0 && p[l - 1] != '\n') l--;
    if (l == 0 && !line_starting) return n;
    if (l == n) return n; /* nothing after the newline: \s+ does not match */
    size_t q = l, k;
    while (q < n && (k = ju_space_at(p + q, n - q)) > 0) q += k;
    return q == n ? l : n;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t k;
    while (i < n && (k = ju_space_at(s + i, n - i)) > 0) i += k;
    return i;
}

/* Match a block end at i: "+%}" | "-%}\s*" | "%}\n?" (close = "%}" or "}}" or "#}"; trim only
 * for %} and #}). Returns the end position or 0 when none; *nl whether it ended with \n. */
static size_t match_end(const char *s, size_t n, size_t i, const char *close, bool trim,
                        bool *nl) {
    *nl = false;
    if (i + 3 <= n && s[i] == '+' && memcmp(s + i + 1, close, 2) == 0 && close[0] != '}')
        return i + 3;
    if (i + 3 <= n && s[i] == '-' && memcmp(s + i + 1, close, 2) == 0) {
        size_t e = skip_ws(s, n, i + 3);
        *nl = e > i + 3 && s[e - 1] == '\n';
        return e;
    }
    if (i + 2 <= n && memcmp(s + i, close, 2) == 0) {
        size_t e = i + 2;
        if (trim && e < n && s[e] == '\n') {
            e++;
            *nl = true;
        }
        return e;
    }
    return 0;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescape the body of a string literal p[0..n) into a new arena string. */
static bool unescape(lexer *L, size_t pos, const char *p, size_t n, jtok *t) {
    char *o = ja_alloc(L->a, n + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n) {
            *w++ = p[i];
            continue;
        }
        char e = p[++i];
        int digits = 0;
        switch (e) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        case 'a': *w++ = '\a'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'v': *w++ = '\v'; break;
        case '\\': *w++ = '\\'; break;
        case '\'': *w++ = '\''; break;
        case '"': *w++ = '"'; break;
        case '\n': break; /* line continuation */
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = 0;
                int k = 0;
                while (k < 3 && i < n && p[i] >= '0' && p[i] <= '7') v = v * 8 + (uint32_t)(p[i++] - '0'), k++;
                i--;
                w += put_utf8(w, v);
            } else {
                *w++ = '\\';
                *w++ = e;
            }
        }
        if (digits) {
            uint32_t v = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? hexval(p[i + 1 + k]) : -1;
                if (h < 0) return lex_error(L, pos, "truncated \\x/\\u escape in a string literal");
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF) return lex_error(L, pos, "illegal Unicode character in a string literal");
            i += (size_t)digits;
            w += put_utf8(w, v);
        }
    }
    *w = 0;
    t->s = o;
    t->n = (size_t)(w - o);
    return true;
}

static bool is_name_start(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}
static bool is_name_char(unsigned char ch) { return is_name_start(ch) || (ch >= '0' && ch <= '9'); }
static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* Tokens inside a tag from i, up to and including its end; returns the position after it. */
static bool lex_tag(lexer *L, size_t *ip, bool is_block, bool *nl) {
    const char *s = L->s;
    size_t n = L->n, i = *ip;
    char stack[256];
    int depth = 0;
    const char *close = is_block ? "%}" : "}}";
    for (;;) {
        if (i >= n) return lex_error(L, i, is_block ? "unexpected end of template: missing '%}'" : "unexpected end of template: missing '}}'");
        if (depth == 0) {
            size_t e = match_end(s, n, i, close, is_block, nl);
            if (e) {
                push(L, is_block ? TK_BLOCK_END : TK_VAR_END, i);
                *ip = e;
                return true;
            }
        }
        size_t k = ju_space_at(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        unsigned char ch = (unsigned char)s[i];
        if (is_digit((char)ch)) {
            size_t j = i;
            while (j < n && (is_digit(s[j]) || s[j] == '_')) j++;
            bool is_float = false;
            if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
                is_float = true;
                j++;
                while (j < n && (is_digit(s[j]) || s[j] == '_')) j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t q = j + 1;
                if (q < n && (s[q] == '+' || s[q] == '-')) q++;
                if (q < n && is_digit(s[q])) {
                    while (q < n && (is_digit(s[q]) || s[q] == '_')) q++;
                    j = q;
                    is_float = true;
                }
            }
            char num[64];
            size_t m = 0;
            for (size_t q = i; q < j && m < sizeof num - 1; q++)
                if (s[q] != '_') num[m++] = s[q];
            num[m] = 0;
            jtok *t = push(L, is_float ? TK_FLOAT : TK_INT, i);
            if (is_float)
                t->f = strtod(num, NULL);
            else
                t->i = strtoll(num, NULL, 10);
            i = j;
            continue;
        }
        if (is_name_start(ch)) {
            size_t j = i;
            while (j < n && is_name_char((unsigned char)s[j])) j++;
            jtok *t = push(L, TK_NAME, i);
            t->s = ja_strndup(L->a, s + i, j - i);
            t->n = j - i;
            i = j;
            continue;
        }
        if (ch == '\'' || ch == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != (char)ch) j += (s[j] == '\\') ? 2 : 1;
            if (j >= n) return lex_error(L, i, "unterminated string literal");
            jtok *t = push(L, TK_STRING, i);
            if (!unescape(L, i, s + i + 1, j - i - 1, t)) return false;
            i = j + 1;
            continue;
        }
        static const char *const OPS2[] = {"//", "**", "==", "!=", ">=", "<="};
        size_t oplen = 0;
        for (size_t q = 0; q < sizeof OPS2 / sizeof OPS2[0]; q++)
            if (i + 1 < n && s[i] == OPS2[q][0] && s[i + 1] == OPS2[q][1]) oplen = 2;
        if (!oplen && strchr("+-/*%~[](){}<>=.:|,;", (char)ch) && ch) oplen = 1;
        if (!oplen) {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected character '%c' in a tag", ch >= 0x20 && ch < 0x7f ? ch : '?');
            return lex_error(L, i, msg);
        }
        if (oplen == 1 && strchr("([{", (char)ch)) {
            if (depth >= (int)sizeof stack) return lex_error(L, i, "brackets nested too deeply");
            stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (oplen == 1 && strchr(")]}", (char)ch)) {
            if (depth == 0 || stack[depth - 1] != (char)ch) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected '%c'", ch);
                return lex_error(L, i, msg);
            }
            depth--;
        }
        jtok *t = push(L, TK_OP, i);
        t->s = ja_strndup(L->a, s + i, oplen);
        t->n = oplen;
        i += oplen;
    }
}

/* `{%(-|+|)\s*raw\s*(-%}\s*|%})` at i: end position, or 0. */
static size_t match_raw_begin(const char *s, size_t n, size_t i, const char *word) {
    size_t j = i + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    j = skip_ws(s, n, j);
    size_t wl = strlen(word);
    if (j + wl > n || memcmp(s + j, word, wl) != 0) return 0;
    j = skip_ws(s, n, j + wl);
    return j;
}

bool jlex(jarena *a, const char *src, size_t len, jtok **toks, size_t *ntok, char **err, int *eline,
          int *ecol) {
    lexer L = {.a = a, .lc_line = 1, .lc_col = 1};
    /* newline normalization; drop one trailing newline */
    char *s = ja_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;
    L.s = s;
    L.n = n;

    size_t i = 0;
    bool line_starting = true;
    while (i < n) {
        /* next tag start */
        size_t t = i;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) {
            push_text(&L, i, s + i, n - i);
            break;
        }
        char kind = s[t + 1];
        char sign = t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        size_t tl = t - i; /* text length before the tag */
        if (sign == '-')
            tl = rstrip_len(s + i, tl);
        else if (sign != '+' && kind != '{')
            tl = lstrip_len(s + i, tl, line_starting);
        push_text(&L, i, s + i, tl);
        size_t body = t + 2 + (sign ? 1 : 0);

        if (kind == '%') {
            size_t rb = match_raw_begin(s, n, t, "raw");
            bool nl = false;
            size_t re = rb ? match_end(s, n, rb, "%}", false, &nl) : 0;
            if (rb && re && s[rb] != '+') {
                /* raw block: find {%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?) */
                size_t q = re;
                for (;;) {
                    while (q + 1 < n && !(s[q] == '{' && s[q + 1] == '%')) q++;
                    if (q + 1 >= n) {
                        lex_error(&L, t, "missing end of raw directive");
                        goto fail;
                    }
                    size_t eb = match_raw_begin(s, n, q, "endraw");
                    bool nl2;
                    size_t ee = eb ? match_end(s, n, eb, "%}", true, &nl2) : 0;
                    if (!ee) {
                        q++;
                        continue;
                    }
                    char sg = s[q + 2] == '-' || s[q + 2] == '+' ? s[q + 2] : 0;
                    size_t rl = q - re;
                    if (sg == '-')
                        rl = rstrip_len(s + re, rl);
                    else if (sg != '+')
                        rl = lstrip_len(s + re, rl, nl);
                    push_text(&L, re, s + re, rl);
                    i = ee;
                    line_starting = nl2;
                    break;
                }
                continue;
            }
            push(&L, TK_BLOCK_BEGIN, t);
            i = body;
            bool nl2;
            if (!lex_tag(&L, &i, true, &nl2)) goto fail;
            line_starting = nl2;
        } else if (kind == '{') {
            push(&L, TK_VAR_BEGIN, t);
            i = body;
            bool nl2;
            if (!lex_tag(&L, &i, false, &nl2)) goto fail;
            line_starting = nl2;
        } else { /* comment */
            size_t q = body, e = 0;
            bool nl2 = false;
            for (; q < n; q++) {
                if ((e = match_end(s, n, q, "#}", true, &nl2)) != 0) break;
            }
            if (!e) {
                lex_error(&L, t, "missing end of comment tag");
                goto fail;
            }
            i = e;
            line_starting = nl2;
        }
    }
    push(&L, TK_EOF, n);
    *toks = L.toks;
    *ntok = L.ntok;
    return true;
fail:
    *err = L.err;
    *eline = L.eline;
    *ecol = L.ecol;
    return false;
}
