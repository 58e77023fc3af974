/* Progress display: a live, overwritten line on a terminal; plain lines otherwise (logs, CI). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "run.h"

void lt_progress_init(lt_progress *p, int64_t start_step, int64_t total, int64_t log_every) {
    p->tty = isatty(fileno(stderr));
    p->start_step = start_step;
    p->total = total;
    p->log_every = log_every > 0 ? log_every : 1;
    p->t0 = lt_now();
    p->line_open = false;
    p->off = false;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void lt_progress_update(lt_progress *p, int64_t step, double loss, float lr, double tokens_per_s,
                        double eval_loss) {
    bool due = step % p->log_every == 0 || step == p->total;
    if (p->off || (!p->tty && !due)) return;
    double done = (double)(step - p->start_step);
    double eta = done > 0 ? (lt_now() - p->t0) / done * (double)(p->total - step) : 0;
    char etas[32], evs[48] = "";
    fmt_eta(etas, sizeof etas, eta);
    if (!isnan(eval_loss)) snprintf(evs, sizeof evs, " | eval %.4f", eval_loss);
    fprintf(stderr, "%sstep %lld/%lld | loss %.4f | lr %.3e | %.0f tok/s | ETA %s | mem %.0f MiB%s%s",
            p->tty ? "\r\033[K" : "", (long long)step, (long long)p->total, loss, lr,
            tokens_per_s, etas, lt_peak_rss() / 1048576.0, evs, p->tty ? "" : "\n");
    p->line_open = p->tty;
    fflush(stderr);
}

void lt_progress_note(lt_progress *p, const char *fmt, ...) {
    if (p->off) return;
    if (p->line_open) fputs("\r\033[K", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    p->line_open = false;
}

void lt_progress_end(lt_progress *p) {
    if (p->line_open) fputc('\n', stderr);
    p->line_open = false;
}
