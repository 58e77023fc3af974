/* libFuzzer: `lathe report` over a run directory whose manifest.json and metrics.jsonl are the
 * input (split at the first NUL byte; without one, all of it is the manifest and metrics is
 * empty): JSON of any shape, huge, tiny, negative or non-finite figures, many series points.
 * The page is written to the scratch directory. */
#include "fuzz.h"
#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t mlen = nul ? (size_t)(nul - data) : size;
    char dir[128], path[160];
    snprintf(dir, sizeof dir, "%s/run", fz_dir());
    mkdir(dir, 0700);
    fz_write(path, sizeof path, "run/manifest.json", data, mlen, 0);
    fz_write(path, sizeof path, "run/metrics.jsonl", nul ? nul + 1 : data, nul ? size - mlen - 1 : 0,
             0);
    const char *runs[2] = {dir, dir};
    snprintf(path, sizeof path, "%s/report.html", fz_dir());
    (void)lt_report_write(runs, 1 + (size & 1), path);
    return 0;
}
