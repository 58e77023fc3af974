/* Continuing from a parent adapter (recipe lora.init_from; issue 11): the nightly job trains
 * tonight's adapter from last night's. The parent must be an adapter for this recipe's LoRA
 * layout and this base, else the new run would silently train another function; its checksum
 * goes in the manifest so that a chain of nightly adapters can be followed back to its first
 * run (each manifest also records its own adapter's checksum, lt_run_export). */
#include "run.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The base model's SHA-256 recorded by the parent's run manifest: DIR/manifest.json (a published
 * version) or DIR/../manifest.json (a run's adapter/). *manifest receives the file used ("" when
 * none has one). */
static void parent_base_sha(const char *dir, char *manifest, size_t cap, char sha[65]) {
    static const char *const where[] = {"%s/manifest.json", "%s/../manifest.json"};
    manifest[0] = sha[0] = 0;
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, where[i], dir);
        json_t *j = json_load_file(p, 0, NULL);
        const char *s = json_string_value(json_object_get(json_object_get(j, "base_model"),
                                                          "sha256"));
        if (s && strlen(s) == 64) {
            snprintf(manifest, cap, "%s", p);
            snprintf(sha, 65, "%s", s);
        }
        json_decref(j);
        if (sha[0]) return;
    }
}

static void targets_str(unsigned bits, char *out, size_t cap) {
    size_t n = 0;
    out[0] = 0;
    for (int k = 0; k < LT_MOD_COUNT; k++)
        if (bits & (1u << k))
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "",
                                  lt_module_name((lt_module)k));
}

lt_status lt_run_init_from(lt_run *run, lt_model *m, const lt_lora_config *want) {
    const lt_recipe *r = run->r;
    const char *dir = r->lora.init_from, *src = r->source ? r->source : "recipe";
    lt_status st = lt_peft_load(m, dir);
    if (st) return lt_error_wrap(st, "%s: lora.init_from", src);
    const lt_lora_config *got = &m->lora;
    if (got->r != want->r || got->alpha != want->alpha || got->rslora != want->rslora ||
        got->targets != want->targets) {
        char gt[256], wt[256];
        targets_str(got->targets, gt, sizeof gt);
        targets_str(want->targets, wt, sizeof wt);
        return lt_error_set(LT_ERR_RECIPE, "%s: lora.init_from: %s has r=%d, lora_alpha=%g, "
                            "use_rslora=%s on [%s]; this recipe asks r=%d, alpha=%g, rslora=%s "
                            "on [%s] (hint: set lora.r, lora.alpha, lora.rslora and "
                            "lora.target_modules to the parent's, or start a new chain without "
                            "lora.init_from)", src, dir, got->r, got->alpha,
                            got->rslora ? "true" : "false", gt, want->r, want->alpha,
                            want->rslora ? "true" : "false", wt);
    }
    m->lora.dropout = want->dropout; /* a training setting, not part of the adapter */

    char man[PATH_MAX + 32], parent_base[65];
    parent_base_sha(dir, man, sizeof man, parent_base);
    json_t *mj = run->manifest;
    const char *base = json_string_value(json_object_get(json_object_get(mj, "base_model"),
                                                         "sha256"));
    if (parent_base[0] && base && strcmp(parent_base, base))
        return lt_error_set(LT_ERR_RECIPE, "%s: lora.init_from: %s was trained on a base with "
                            "SHA-256 %s (%s), but model.path %s has SHA-256 %s (hint: continue "
                            "from an adapter of this base, or point model.path at the parent's "
                            "base)", src, dir, parent_base, man, r->model.path, base);
    if (!parent_base[0])
        lt_warn("lora.init_from: %s has no run manifest beside it; its base cannot be checked "
                "beyond the tensor shapes (they fit %s)", dir, r->model.path);

    char ad[PATH_MAX + 64], sha[65];
    snprintf(ad, sizeof ad, "%s/adapter_model.safetensors", dir);
    if ((st = lt_sha256_file(ad, sha))) return st;
    json_t *e = json_object();
    json_object_set_new(e, "path", json_string(dir));
    json_object_set_new(e, "adapter_sha256", json_string(sha));
    json_object_set_new(e, "parent_manifest", man[0] ? json_string(man) : json_null());
    lt_info("continuing from %s (adapter %.12s..., r=%d)", dir, sha, got->r);
    return lt_run_manifest_set(run, "init_from", e);
}
