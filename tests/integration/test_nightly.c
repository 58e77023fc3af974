/* Nightly jobs (issue 11): a run continues from last night's adapter (lora.init_from) — the
 * parent's checks, the exact continuation and the chain in the manifests. Shortened CI recipe
 * (stories260K, identity data). */
#include <jansson.h>
#include <math.h>

#include "../support.h"

static char tmp[256], model[1024], data[1024];
static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "nightly"); }
static void teardown(void) { ts_rmtree(tmp); }

static int train(const char *run, const char *extra, char **out) {
    char args[4096];
    snprintf(args, sizeof args, "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s --set train.max_steps=10 --set train.save_every=0 "
             "--set train.eval_every=5 %s", model, tmp, tmp, run, extra);
    return ts_run(tmp, args, out);
}

static void tokenize(void) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    ts_fixture(data, sizeof data, "data/identity.json");
    char args[4096], *out;
    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/data "
             "--eval-fraction 0.1", model, data, tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "tokenize failed: %s", out);
    free(out);
}

/* eval_loss values of run/metrics.jsonl in order; returns how many (<= cap). */
static int eval_losses(const char *run, double *v, int cap) {
    char path[600], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    int k = 0;
    for (char *p = strstr(text, "\"eval_loss\": "); p && k < cap; p = strstr(p + 1, "\"eval_loss\": "))
        v[k++] = strtod(p + 13, NULL);
    free(text);
    return k;
}

static json_t *manifest(const char *run) {
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.json", run);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert_not_null(j, "%s unreadable", path);
    return j;
}

static const char *jstr(json_t *j, const char *a, const char *b) {
    return json_string_value(json_object_get(json_object_get(j, a), b));
}

Test(nightly, init_from_continues_exactly_and_records_the_chain, .init = setup, .fini = teardown,
     .timeout = 200) {
    tokenize();
    char n1[400], n2[400], extra[600], *out;
    snprintf(n1, sizeof n1, "%s/night1", tmp);
    snprintf(n2, sizeof n2, "%s/night2", tmp);
    cr_assert_eq(train(n1, "", &out), 0, "%s", out);
    free(out);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter", n1);
    cr_assert_eq(train(n2, extra, &out), 0, "%s", out);
    cr_assert(strstr(out, "continuing from"), "%s", out);
    free(out);

    /* night 2 starts where night 1 ended: its step-0 evaluation of the same eval shards is
     * night 1's last (same adapter, same forward, same fixed-order pass) */
    double e1[8], e2[8];
    int k1 = eval_losses(n1, e1, 8), k2 = eval_losses(n2, e2, 8);
    cr_assert(k1 >= 2 && k2 >= 2);
    cr_assert(fabs(e2[0] - e1[k1 - 1]) < 1e-6, "night 2 starts at %.6f, night 1 ended at %.6f",
              e2[0], e1[k1 - 1]);
    cr_assert(e2[k2 - 1] < e2[0], "night 2 did not train further (%.6f -> %.6f)", e2[0],
              e2[k2 - 1]);

    /* the chain: night 2's parent checksum is night 1's adapter checksum */
    json_t *m1 = manifest(n1), *m2 = manifest(n2);
    const char *a1 = jstr(m1, "adapter", "sha256"), *p2 = jstr(m2, "init_from", "adapter_sha256");
    cr_assert(a1 && p2 && !strcmp(a1, p2), "night 2's parent %s is not night 1's adapter %s",
              p2 ? p2 : "(none)", a1 ? a1 : "(none)");
    cr_assert(jstr(m2, "init_from", "parent_manifest") &&
              strstr(jstr(m2, "init_from", "parent_manifest"), "night1"));
    cr_assert(json_is_null(json_object_get(m1, "init_from")) ||
              !json_object_get(m1, "init_from"), "night 1 has no parent");
    json_decref(m1);
    json_decref(m2);
}

Test(nightly, init_from_refuses_another_layout_or_base, .init = setup, .fini = teardown,
     .timeout = 200) {
    tokenize();
    char n1[400], bad[400], extra[1200], cmd[3000], *out;
    snprintf(n1, sizeof n1, "%s/night1", tmp);
    cr_assert_eq(train(n1, "", &out), 0, "%s", out);
    free(out);

    /* another rank */
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter --set lora.r=4", n1);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "lora.init_from") && strstr(out, "r=8") && strstr(out, "r=4"), "%s",
              out);
    free(out);
    ts_rmtree(bad);

    /* another target list */
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter "
             "--set 'lora.target_modules=[q_proj, k_proj, v_proj]'", n1);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "k_proj"), "%s", out);
    free(out);
    ts_rmtree(bad);

    /* a parent whose run manifest names another base */
    char par[400];
    snprintf(par, sizeof par, "%s/other", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s/adapter' '%s/adapter' && sed "
             "'s/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"%064d\"/' '%s/manifest.json' > "
             "'%s/manifest.json'", par, n1, par, 0, n1, par);
    cr_assert_eq(system(cmd), 0);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter", par);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "SHA-256") && strstr(out, "0000000000"), "%s", out);
    free(out);
    ts_rmtree(bad);

    /* not an adapter directory */
    snprintf(extra, sizeof extra, "--set lora.init_from=%s", tmp);
    cr_assert_eq(train(bad, extra, &out), 3, "%s", out);
    cr_assert(strstr(out, "adapter_config.json"), "%s", out);
    free(out);
}
