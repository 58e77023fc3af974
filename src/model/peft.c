/* PEFT LoRA adapter save/load (format summary in model.h; source: huggingface/peft
 * src/peft/tuners/lora/config.py and model.py, safetensors README). */
#include "model.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The PEFT tensor name of adapter module `name` (its parent from projection k). */
static void tensor_name(char *buf, size_t n, int layer, int k, const char *name, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", layer,
             lt_module_parent((lt_module)k), name, ab);
}

/* The adapter module of projection k in layer l when k is its first member: A, and the header
 * of the module's whole B (the members' row blocks, contiguous in the flat buffer). Returns
 * false for later members of a fused module and for modules without an adapter. */
static bool module_ab(const lt_model *m, int l, int k, const char **name, lt_tensor *A,
                      lt_tensor *B) {
    int first;
    const int n = lt_model_adapter_group(&m->cfg, k, &first, name);
    const lt_layer *L = &m->layers[l];
    if (k != first || !L->lora_A[k].data) return false;
    *A = L->lora_A[k];
    *B = L->lora_B[k];
    for (int j = 1; j < n; j++) B->shape[0] += L->lora_B[k + j].shape[0];
    return true;
}

lt_status lt_peft_save(const lt_model *m, const char *dir, const char *base_name, bool replace) {
    LT_ASSERT(m->lora_params != NULL);
    char tmp[PATH_MAX], path[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    lt_remove_tree(tmp);
    lt_status st = lt_mkdir_p(tmp);
    if (st) return st;

    json_t *cfg = json_object();
    json_t *targets = json_array();
    for (int k = 0; k < LT_MOD_COUNT; k++) {
        int first;
        const char *name;
        lt_model_adapter_group(&m->cfg, k, &first, &name);
        if (k == first && (m->lora.targets & (1u << k)))
            json_array_append_new(targets, json_string(name));
    }
    json_object_set_new(cfg, "peft_type", json_string("LORA"));
    json_object_set_new(cfg, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(cfg, "r", json_integer(m->lora.r));
    json_object_set_new(cfg, "lora_alpha", json_real(m->lora.alpha));
    json_object_set_new(cfg, "lora_dropout", json_real(m->lora.dropout));
    json_object_set_new(cfg, "target_modules", targets);
    json_object_set_new(cfg, "use_rslora", json_boolean(m->lora.rslora));
    json_object_set_new(cfg, "use_dora", json_false());
    json_object_set_new(cfg, "bias", json_string("none"));
    json_object_set_new(cfg, "fan_in_fan_out", json_false());
    json_object_set_new(cfg, "inference_mode", json_true());
    json_object_set_new(cfg, "init_lora_weights", json_true());
    json_object_set_new(cfg, "modules_to_save", json_null());
    json_object_set_new(cfg, "base_model_name_or_path", json_string(base_name ? base_name : ""));
    char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    snprintf(path, sizeof path, "%s/adapter_config.json", tmp);
    st = lt_write_file_atomic(path, text, strlen(text));
    free(text);
    if (st) goto fail;

    lt_st_writer *w = lt_st_writer_new();
    char name[160];
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            lt_tensor A, B;
            const char *mod;
            if (!module_ab(m, l, k, &mod, &A, &B)) continue;
            /* the host mirror (on a device: lt_model_adapter_to_host first) */
            tensor_name(name, sizeof name, l, k, mod, 'A');
            lt_st_writer_add(w, name, LT_F32, 2, A.shape, lt_model_host_data(m, &A));
            tensor_name(name, sizeof name, l, k, mod, 'B');
            lt_st_writer_add(w, name, LT_F32, 2, B.shape, lt_model_host_data(m, &B));
        }
    lt_st_writer_meta(w, "format", "pt");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", tmp);
    st = lt_st_writer_write(w, path);
    lt_st_writer_free(w);
    if (st) goto fail;
    if ((st = lt_dir_publish(tmp, dir, replace))) goto fail;
    return LT_OK;
fail:
    lt_remove_tree(tmp);
    return st;
}

/* The largest rank an adapter may declare: the recipe's lora.r maximum (recipe_keys.c), so that
 * r x hidden sizes stay far from overflow and the allocation stays sensible. */
#define PEFT_R_MAX 4096

static lt_status cfg_error(const char *path, const char *what) {
    return lt_error_set(LT_ERR_MODEL, "%s: %s", path, what);
}

lt_status lt_peft_load(lt_model *m, const char *dir) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    if (!cfg)
        return lt_error_set(LT_ERR_MODEL, "%s:%d: cannot read adapter config: %s; hint: "
                            "--adapter takes the directory holding adapter_config.json", path,
                            jerr.line, jerr.text);
    lt_status st = LT_OK;
    lt_lora_config lc = {0};
    json_t *v;
    if (!(v = json_object_get(cfg, "peft_type")) || !json_is_string(v) ||
        strcmp(json_string_value(v), "LORA")) {
        st = cfg_error(path, "peft_type is not \"LORA\"; lathe applies LoRA adapters only");
        goto done;
    }
    if (!(v = json_object_get(cfg, "r")) || !json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > PEFT_R_MAX) {
        st = lt_error_set(LT_ERR_MODEL, "%s: 'r' must be an integer in 1..%d (the recipe's "
                          "lora.r range); hint: a damaged or hand-edited adapter_config.json",
                          path, PEFT_R_MAX);
        goto done;
    }
    lc.r = (int)json_integer_value(v);
    if (!(v = json_object_get(cfg, "lora_alpha")) || !json_is_number(v) ||
        !isfinite(json_number_value(v)) || !isfinite((float)json_number_value(v))) {
        st = cfg_error(path, "'lora_alpha' must be a finite number (as a float32)");
        goto done;
    }
    lc.alpha = (float)json_number_value(v);
    lc.rslora = json_is_true(json_object_get(cfg, "use_rslora"));
    if ((v = json_object_get(cfg, "lora_dropout")) && json_is_number(v)) {
        double d = json_number_value(v);
        if (!(d >= 0 && d < 1)) {
            st = cfg_error(path, "'lora_dropout' must be in [0, 1)");
            goto done;
        }
        lc.dropout = (float)d; /* matters when training resumes from here */
    }
    if (json_is_true(json_object_get(cfg, "use_dora"))) {
        st = cfg_error(path, "DoRA adapters (use_dora) are not supported");
        goto done;
    }
    if ((v = json_object_get(cfg, "bias")) && json_is_string(v) &&
        strcmp(json_string_value(v), "none")) {
        st = cfg_error(path, "adapters with trained biases (bias != \"none\") are not supported");
        goto done;
    }
    /* settings that change which weights or what scale the adapter has; applying the adapter
     * without them would silently give another model (peft LoraConfig fields) */
    json_t *mts = json_object_get(cfg, "modules_to_save");
    if (mts && !json_is_null(mts) && !(json_is_array(mts) && json_array_size(mts) == 0)) {
        st = cfg_error(path, "'modules_to_save' is set: the adapter carries fully trained copies "
                       "of other layers, which lathe does not apply");
        goto done;
    }
    static const char *const patterns[] = {"rank_pattern", "alpha_pattern"};
    for (int p = 0; p < 2; p++) {
        json_t *pat = json_object_get(cfg, patterns[p]);
        if (pat && !json_is_null(pat) && !(json_is_object(pat) && json_object_size(pat) == 0)) {
            st = lt_error_set(LT_ERR_MODEL, "%s: '%s' gives some modules their own rank or "
                              "alpha; lathe applies one r and lora_alpha to every module", path,
                              patterns[p]);
            goto done;
        }
    }
    json_t *ltt = json_object_get(cfg, "layers_to_transform");
    if (ltt && !json_is_null(ltt)) {
        st = cfg_error(path, "'layers_to_transform' limits the adapter to some layers, which "
                       "lathe does not support");
        goto done;
    }
    if (json_is_true(json_object_get(cfg, "fan_in_fan_out"))) {
        st = cfg_error(path, "'fan_in_fan_out' is true (Conv1D weights stored [in, out], as in "
                       "GPT-2); lathe reads nn.Linear adapters only");
        goto done;
    }
    json_t *tm = json_object_get(cfg, "target_modules");
    if (!json_is_array(tm) || json_array_size(tm) == 0) {
        st = cfg_error(path, "'target_modules' must be a non-empty list of module names");
        goto done;
    }
    size_t i;
    json_array_foreach(tm, i, v) {
        unsigned bits = json_is_string(v) ? lt_model_adapter_bits(&m->cfg, json_string_value(v))
                                          : 0;
        if (!bits) {
            st = lt_error_set(LT_ERR_MODEL, "%s: target module '%s' is not a projection of this "
                              "base model; hint: was the adapter trained on another "
                              "architecture?", path, json_is_string(v) ? json_string_value(v) : "?");
            goto done;
        }
        lc.targets |= bits;
    }
    if ((st = lt_model_check_targets(&m->cfg, lc.targets, path))) {
        st = LT_ERR_MODEL;
        goto done;
    }
    /* the same layout (rank and modules) keeps the buffers — a checkpoint into a model already
     * on its device; another one makes a new adapter, which a device model cannot */
    if (m->lora_params && m->lora.r == lc.r && m->lora.targets == lc.targets) {
        m->lora.alpha = lc.alpha;
        m->lora.dropout = lc.dropout;
        m->lora.rslora = lc.rslora;
        m->lora.scale = lt_lora_scale(&lc);
    } else if (m->device != LT_CPU) {
        st = lt_error_set(LT_ERR_USAGE, "%s: r=%d on another module list cannot replace the "
                          "adapter of a model already on its device", path, lc.r);
        goto done;
    } else {
        lt_model_add_lora(m, &lc, 0);
    }

    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    lt_safetensors *sf = NULL;
    if ((st = lt_safetensors_open(&sf, path))) goto done;
    char name[160];
    int used = 0;
    for (int l = 0; l < m->cfg.n_layer && !st; l++)
        for (int k = 0; k < LT_MOD_COUNT && !st; k++) {
            lt_tensor A, B, *ab[2] = {&A, &B};
            const char *mod;
            if (!module_ab(m, l, k, &mod, &A, &B)) continue;
            for (int j = 0; j < 2 && !st; j++) {
                tensor_name(name, sizeof name, l, k, mod, j ? 'B' : 'A');
                const lt_st_tensor *t = lt_safetensors_find(sf, name);
                if (!t) {
                    st = lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' is missing", path, name);
                } else if (t->ndim != 2 || t->shape[0] != ab[j]->shape[0] ||
                           t->shape[1] != ab[j]->shape[1]) {
                    st = lt_error_set(LT_ERR_MODEL, "%s: tensor '%s' has the wrong shape for "
                                      "this base model (expected [%lld, %lld]); was the adapter "
                                      "trained on another model?", path, name,
                                      (long long)ab[j]->shape[0], (long long)ab[j]->shape[1]);
                } else {
                    lt_st_tensor_to_f32(t, (float *)lt_model_host_data(m, ab[j]));
                    used++;
                }
            }
        }
    if (!st && used != sf->n_tensors)
        st = lt_error_set(LT_ERR_MODEL, "%s: holds %d tensors but the config's target modules "
                          "account for %d; the adapter names layers or modules this model does "
                          "not have", path, sf->n_tensors, used);
    lt_safetensors_close(sf);
    if (!st) lt_model_adapter_to_device(m); /* read into the host mirror */
done:
    json_decref(cfg);
    return st;
}
