/* The run report (report.h): metrics.jsonl and manifest.json of each run into one HTML page
 * with inline SVG charts. Built in a growing buffer, written atomically. */
#include "report/report.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- output buffer ------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void bput(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = lt_xrealloc(b->p, b->cap);
    }
}

/* Text with & < > " escaped. */
static void besc(buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': bput(b, "&amp;"); break;
        case '<': bput(b, "&lt;"); break;
        case '>': bput(b, "&gt;"); break;
        case '"': bput(b, "&quot;"); break;
        default: bput(b, "%c", *s);
        }
    }
}

/* ---- one run ------------------------------------------------------------------------------ */

enum { S_LOSS, S_EVAL, S_LR, S_GNORM, S_TPS, S_COUNT };
static const char *const series_title[S_COUNT] = {"train loss", "eval loss", "learning rate",
                                                  "gradient norm (before clipping)", "tokens/s"};
static const char *const series_key[S_COUNT] = {"loss", "eval_loss", "lr", "grad_norm",
                                                "tokens_per_s"};

typedef struct {
    double *x, *y;
    size_t n, cap;
} series;

typedef struct {
    char name[256];
    json_t *man;
    series s[S_COUNT];
} run;

static void push(series *s, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->x = lt_xrealloc(s->x, s->cap * sizeof *s->x);
        s->y = lt_xrealloc(s->y, s->cap * sizeof *s->y);
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

static lt_status load_run(run *r, const char *dir) {
    const char *base = strrchr(dir, '/');
    size_t len = strlen(dir);
    while (base && base[1] == 0 && base > dir) { /* "runs/night1/" -> night1 */
        len = (size_t)(base - dir);
        base = memrchr(dir, '/', len);
    }
    base = base ? base + 1 : dir;
    snprintf(r->name, sizeof r->name, "%.*s", (int)(dir + len - base), base);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    json_error_t je;
    r->man = json_load_file(path, 0, &je);
    if (!json_is_object(r->man))
        return lt_error_set(LT_ERR_DATA, "%s: %s (hint: lathe report takes run directories, "
                            "as `lathe train` writes them)", path,
                            r->man ? "not a JSON object" : je.text);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text;
    size_t n;
    if (lt_read_file(path, &text, &n))
        return lt_error_set(LT_ERR_DATA, "%s: unreadable (hint: lathe report takes run "
                            "directories, as `lathe train` writes them)", path);
    int line = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (ll > 0) {
            json_t *j = json_loadb(p, ll, 0, NULL);
            json_t *step = json_object_get(j, "step");
            if (!json_is_integer(step)) {
                lt_warn("%s:%d: not a metrics record; skipped", path, line);
            } else {
                for (int k = 0; k < S_COUNT; k++) {
                    json_t *v = json_object_get(j, series_key[k]);
                    if (json_is_number(v))
                        push(&r->s[k], (double)json_integer_value(step), json_number_value(v));
                }
            }
            json_decref(j);
        }
        p += ll + (nl ? 1 : 0);
    }
    free(text);
    return LT_OK;
}

static void free_run(run *r) {
    json_decref(r->man);
    for (int k = 0; k < S_COUNT; k++) {
        free(r->s[k].x);
        free(r->s[k].y);
    }
}

/* ---- charts ------------------------------------------------------------------------------- */

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define N_COLORS (sizeof palette / sizeof *palette)
enum { W = 620, H = 300, ML = 64, MR = 16, MB = 40 };

/* A "nice" tick step for a range (1, 2 or 5 times a power of ten, about 5 ticks). */
static double tick_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

static void chart(buf *b, const run *runs, size_t n, int k) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < runs[i].s[k].n; j++) {
            x0 = fmin(x0, runs[i].s[k].x[j]), x1 = fmax(x1, runs[i].s[k].x[j]);
            y0 = fmin(y0, runs[i].s[k].y[j]), y1 = fmax(y1, runs[i].s[k].y[j]);
        }
    bput(b, "<figure><figcaption>%s against step</figcaption>\n", series_title[k]);
    if (!isfinite(x0)) {
        bput(b, "<p class=\"none\">no %s recorded</p></figure>\n", series_title[k]);
        return;
    }
    /* a single step: widen by at least one step and one part in 1e9 (x0 + 1 == x0 at 2^63) */
    if (!(x1 > x0)) x1 = x0 + fmax(1, fabs(x0) * 1e-9);
    const int MT = 14 + 13 * (int)((n + 3) / 4); /* legend rows of 4 runs above the plot */
    double pad = (y1 - y0) * 0.06;
    if (!(pad > fabs(y0) * 1e-12)) pad = fabs(y0) * 0.05 + 1e-9; /* flat, or flat to rounding */
    y0 -= pad, y1 += pad;
    double pw = W - ML - MR, ph = H - MT - MB;
#define PX(v) (ML + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (MT + (y1 - (v)) / (y1 - y0) * ph)
    bput(b, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n", W, H, W, H);
    bput(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" class=\"plot\"/>\n", ML, MT,
         pw, ph);
    /* ticks by count, not by adding: at 1e20 a step of 0.2 would not move t */
    double ys = tick_step(y1 - y0), yt0 = ceil(y0 / ys) * ys;
    for (int i = 0; i < 40 && yt0 + i * ys <= y1; i++) {
        double t = yt0 + i * ys;
        bput(b, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
             "<text x=\"%d\" y=\"%.1f\" class=\"yl\">%.4g</text>\n", ML, ML + pw, PY(t), PY(t),
             ML - 6, PY(t) + 4, fabs(t) < ys * 1e-6 ? 0.0 : t);
    }
    double xs = fmax(1, tick_step(x1 - x0)), xt0 = ceil(x0 / xs) * xs;
    for (int i = 0; i < 40 && xt0 + i * xs <= x1; i++) {
        double t = xt0 + i * xs;
        bput(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
             "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%.0f</text>\n", PX(t), PX(t), MT, MT + ph,
             PX(t), MT + ph + 16, t);
    }
    bput(b, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">step</text>\n", ML + pw / 2, H - 4);
    for (size_t i = 0; i < n; i++) {
        const series *s = &runs[i].s[k];
        const char *c = palette[i % N_COLORS];
        if (s->n > 1) {
            bput(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", c);
            for (size_t j = 0; j < s->n; j++) bput(b, "%.1f,%.1f ", PX(s->x[j]), PY(s->y[j]));
            bput(b, "\"/>\n");
        }
        for (size_t j = 0; k == S_EVAL && j < s->n; j++) /* few points: mark each */
            bput(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(s->x[j]),
                 PY(s->y[j]), c);
        int row = (int)(i / 4);
        bput(b, "<rect x=\"%.0f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
             "<text x=\"%.0f\" y=\"%d\" class=\"lg\">", ML + 8 + (double)(i % 4) * 130,
             4 + 13 * row, c, ML + 22 + (double)(i % 4) * 130, 13 + 13 * row);
        besc(b, runs[i].name);
        bput(b, "</text>\n");
    }
#undef PX
#undef PY
    bput(b, "</svg></figure>\n");
}

/* ---- the facts table ---------------------------------------------------------------------- */

static const char *js(json_t *o, const char *a, const char *b) {
    json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    return json_string_value(v);
}

static void cell_str(buf *b, const char *s, int prefix) {
    bput(b, "<td>");
    if (!s) bput(b, "&ndash;");
    else if (prefix > 0) {
        bput(b, "<code>");
        char t[80];
        snprintf(t, sizeof t, "%.*s", prefix, s);
        besc(b, t);
        bput(b, "</code>");
    } else besc(b, s);
    bput(b, "</td>");
}

static void facts(buf *b, const run *runs, size_t n) {
    bput(b, "<table><tr><th>run</th><th>status</th><th>started</th><th>finished</th>"
            "<th>base model</th><th>base SHA-256</th><th>data</th><th>steps</th>"
            "<th>eval loss first &rarr; last</th><th>gate baseline</th><th>gate candidate</th>"
            "<th>gate</th><th>published</th><th>parent adapter</th><th>adapter</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        json_t *m = runs[i].man;
        const series *ev = &runs[i].s[S_EVAL], *lo = &runs[i].s[S_LOSS];
        bput(b, "<tr><td><span class=\"sw\" style=\"background:%s\"></span>",
             palette[i % N_COLORS]);
        besc(b, runs[i].name);
        bput(b, "</td>");
        const char *status = js(m, "status", NULL);
        bput(b, "<td class=\"%s\">", status && !strcmp(status, "completed") ? "ok"
                                      : status && !strcmp(status, "running")  ? ""
                                                                                : "bad");
        besc(b, status ? status : "?");
        if (js(m, "error", NULL)) {
            bput(b, "<br><small>");
            besc(b, js(m, "error", NULL));
            bput(b, "</small>");
        }
        bput(b, "</td>");
        cell_str(b, js(m, "started", NULL), 0);
        cell_str(b, js(m, "finished", NULL), 0);
        const char *bp = js(m, "base_model", "path"), *bn = bp ? strrchr(bp, '/') : NULL;
        bput(b, "<td title=\"");
        besc(b, bp);
        bput(b, "\">");
        besc(b, bn ? bn + 1 : bp ? bp : "?");
        bput(b, "</td>");
        cell_str(b, js(m, "base_model", "sha256"), 12);
        /* data: shard files named in the recipe, and raw files with their cache use */
        bput(b, "<td>");
        size_t ns = json_array_size(json_object_get(m, "shards"));
        if (ns) bput(b, "%zu shard%s", ns, ns == 1 ? "" : "s");
        json_t *tk = json_object_get(m, "tokenized"), *e;
        size_t ti;
        json_array_foreach(tk, ti, e) {
            size_t nr = json_array_size(json_object_get(e, "inputs"));
            json_t *w = json_object_get(e, "weight");
            bput(b, "%s%s: %zu raw file%s (%s", ns || ti ? "<br>" : "",
                 js(e, "role", NULL) ? js(e, "role", NULL) : "?", nr, nr == 1 ? "" : "s",
                 json_is_true(json_object_get(e, "reused")) ? "cached" : "tokenized");
            if (json_is_number(w)) bput(b, ", weight %g", json_number_value(w));
            bput(b, ")");
        }
        if (!ns && !json_array_size(tk)) bput(b, "&ndash;");
        bput(b, "</td>");
        bput(b, "<td>%.0f</td>", lo->n ? lo->x[lo->n - 1] : 0.0);
        if (ev->n) bput(b, "<td>%.4f &rarr; %.4f</td>", ev->y[0], ev->y[ev->n - 1]);
        else bput(b, "<td>&ndash;</td>");
        json_t *g = json_object_get(m, "gate");
        if (json_is_object(g)) {
            bool ok = json_is_true(json_object_get(g, "passed"));
            bput(b, "<td>%.4f (%s)</td><td>%.4f</td><td class=\"%s\">%s</td>",
                 json_number_value(json_object_get(g, "baseline")),
                 js(g, "baseline_is", NULL) ? js(g, "baseline_is", NULL) : "",
                 json_number_value(json_object_get(g, "candidate")), ok ? "ok" : "bad",
                 ok ? "passed" : "refused");
        } else {
            bput(b, "<td>&ndash;</td><td>&ndash;</td><td>no gate</td>");
        }
        cell_str(b, js(m, "published", "version"), 0);
        cell_str(b, js(m, "init_from", "adapter_sha256"), 12);
        cell_str(b, js(m, "adapter", "sha256"), 12);
        bput(b, "</tr>\n");
    }
    bput(b, "</table>\n");
}

static const char style[] =
    "body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}"
    "table{border-collapse:collapse;font-size:12px;margin:12px 0}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}.ok{color:#1a7f37;font-weight:bold}.bad{color:#b42318;"
    "font-weight:bold}.sw{display:inline-block;width:10px;height:10px;margin-right:5px}"
    "figure{display:inline-block;margin:8px 12px 8px 0}figcaption{font-size:13px;"
    "font-weight:bold;margin-bottom:2px}.plot{fill:#fff;stroke:#999}.grid{stroke:#e5e5e5}"
    ".yl{font-size:10px;text-anchor:end}.xl{font-size:10px;text-anchor:middle}"
    ".lg{font-size:11px}.none{color:#777;font-size:12px}";

lt_status lt_report_write(const char *const *runs, size_t n, const char *out_path) {
    if (n == 0) return lt_error_set(LT_ERR_USAGE, "lathe report: no run directory given");
    run *rs = lt_xcalloc(n, sizeof *rs);
    lt_status st = LT_OK;
    for (size_t i = 0; i < n && !st; i++) st = load_run(&rs[i], runs[i]);
    if (!st) {
        buf b = {0};
        bput(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>lathe report</title><style>%s</style></head><body>\n", style);
        bput(&b, "<h1>lathe report: %zu run%s</h1>\n", n, n == 1 ? "" : "s");
        facts(&b, rs, n);
        for (int k = 0; k < S_COUNT; k++) chart(&b, rs, n, k);
        bput(&b, "<p><small>lathe %s. Losses are mean cross-entropy per trained token (nats); "
                 "the gate baseline is the adapter the run started from.</small></p>\n"
                 "</body></html>\n", LATHE_VERSION);
        st = lt_write_file_atomic(out_path, b.p, b.n);
        free(b.p);
    }
    for (size_t i = 0; i < n; i++) free_run(&rs[i]);
    free(rs);
    return st;
}
