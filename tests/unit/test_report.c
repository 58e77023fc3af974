/* lathe report (src/report/report.h) on hand-written run directories: figures at the edges of
 * double precision draw in bounded time, text from manifests is HTML-escaped, a missing manifest
 * is an error naming the file. */
#include "../support.h"
#include "report/report.h"

static char dir[256];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "report"); }
static void teardown(void) { ts_rmtree(dir); }

static void write_run(const char *name, const char *manifest, const char *metrics) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(lt_mkdir_p(p), LT_OK);
    snprintf(p, sizeof p, "%s/%s/manifest.json", dir, name);
    cr_assert_eq(lt_write_file_atomic(p, manifest, strlen(manifest)), LT_OK);
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, name);
    cr_assert_eq(lt_write_file_atomic(p, metrics, strlen(metrics)), LT_OK);
}

/* A diverged run: losses of 1e20 that differ by one ulp, and an evaluation at step 2^63-1
 * alone on its axis. Ticks made by repeated addition never reached the end of such an axis
 * (t + step == t); the page must still be drawn, with finite coordinates. */
Test(report, extreme_figures_finish, .init = setup, .fini = teardown, .timeout = 10) {
    write_run("diverged", "{\"status\": \"failed\", \"error\": \"loss is <NaN> & worse\"}",
              "{\"step\": 1, \"loss\": 1e20, \"lr\": 1e-300, \"grad_norm\": 1e308, "
              "\"tokens_per_s\": 0}\n"
              "{\"step\": 2, \"loss\": 1.0000000000000002e20, \"lr\": 2e-300, "
              "\"grad_norm\": 1.7e308, \"tokens_per_s\": 0}\n"
              "not json\n"
              "{\"step\": 9223372036854775807, \"eval_loss\": -0.0}\n");
    char runs_dir[512], out[512];
    snprintf(runs_dir, sizeof runs_dir, "%s/diverged", dir);
    snprintf(out, sizeof out, "%s/r.html", dir);
    const char *runs[1] = {runs_dir};
    cr_assert_eq(lt_report_write(runs, 1, out), LT_OK, "%s", lt_error_message());
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(out, &text, &n), LT_OK);
    cr_assert(strstr(text, "loss is &lt;NaN&gt; &amp; worse"), "manifest text escaped");
    cr_assert(!strstr(text, "<NaN>"));
    cr_assert(!strstr(text, "nan") && !strstr(text, "inf"), "non-finite coordinates drawn");
    free(text);
}

Test(report, not_a_run_is_named, .init = setup, .fini = teardown) {
    char out[512];
    snprintf(out, sizeof out, "%s/r.html", dir);
    const char *runs[1] = {dir};
    cr_assert_eq(lt_report_write(runs, 1, out), LT_ERR_DATA);
    cr_assert(strstr(lt_error_message(), "manifest.json"), "%s", lt_error_message());
    cr_assert_eq(lt_report_write(runs, 0, out), LT_ERR_USAGE);
}
