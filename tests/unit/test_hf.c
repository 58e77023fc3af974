/*
 * Hugging Face model directories: config.json parsing (every field) and writing, RoPE scaling
 * frequencies against a float64 reimplementation of transformers' formulas, tiny random Llama /
 * Qwen2 checkpoints written with the safetensors writer (single file and sharded through an
 * index, F32/F16/BF16), the bias paths through the whole model, the stories260K GGUF converted
 * to an HF directory giving identical logits, and one test per kind of bad input.
 */
#include "../support.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <fcntl.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text) {
    cr_assert_eq(lt_write_file_atomic(path, text, strlen(text)), LT_OK, "%s", lt_error_message());
}

/* One tensor of a test checkpoint: HF name, shape, the F32 values the loader must produce, and
 * the dtype it is stored in (values are pre-rounded to that dtype). */
typedef struct {
    char name[128];
    int ndim;
    int64_t shape[2];
    float *data;
    lt_dtype dt;
} tw;

typedef struct {
    tw t[256];
    int n;
} tset;

static uint64_t rng_state;
static float urand(void) { return (float)((lt_splitmix64(&rng_state) >> 40) * (1.0 / 16777216.0)); }

static tw *tset_add(tset *s, const char *name, int64_t rows, int64_t cols, lt_dtype dt,
                    float center, float spread) {
    cr_assert(s->n < 256);
    tw *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    int64_t n = rows * (cols ? cols : 1);
    t->data = malloc((size_t)n * sizeof(float));
    t->dt = dt;
    for (int64_t i = 0; i < n; i++) {
        float v = center + spread * (2.0f * urand() - 1.0f);
        if (dt == LT_BF16) v = lt_bf16_to_f32(lt_f32_to_bf16(v));
        if (dt == LT_F16) v = lt_f16_to_f32(lt_f32_to_f16(v));
        t->data[i] = v;
    }
    return t;
}

static tw *tset_get(tset *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    cr_assert_fail("test tensor %s missing", name);
    return NULL;
}

static void tset_free(tset *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].data);
    s->n = 0;
}

static const char *mod_parent(int k) { return lt_module_parent((lt_module)k); }
static const char *mod_name(int k) { return lt_module_name((lt_module)k); }

/* Random weights for every tensor `c` asks for, with HF names. Embedding in F16, norms in BF16,
 * the rest F32: all three dtypes go through the loader. */
static void tset_random(tset *s, const lt_model_config *c, uint64_t seed) {
    rng_state = seed;
    s->n = 0;
    int64_t D = c->dim, F = c->ffn_dim, Dq = (int64_t)c->n_head * c->head_dim,
            Dkv = (int64_t)c->n_kv_head * c->head_dim;
    const int64_t rows[7] = {Dq, Dkv, Dkv, D, F, F, D}, cols[7] = {D, D, D, Dq, D, D, F};
    tset_add(s, "model.embed_tokens.weight", c->vocab_size, D, LT_F16, 0, 1);
    tset_add(s, "model.norm.weight", D, 0, LT_BF16, 1, 0.2f);
    if (!c->tied) tset_add(s, "lm_head.weight", c->vocab_size, D, LT_F32, 0, 0.3f);
    char name[128];
    for (int l = 0; l < c->n_layer; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        tset_add(s, name, D, 0, LT_BF16, 1, 0.2f);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        tset_add(s, name, D, 0, LT_BF16, 1, 0.2f);
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, mod_parent(k),
                     mod_name(k));
            tset_add(s, name, rows[k], cols[k], LT_F32, 0, 1.0f / sqrtf((float)cols[k]));
            if ((k <= 2 && c->qkv_bias) || (k == 3 && c->o_bias)) {
                snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, mod_parent(k),
                         mod_name(k));
                tset_add(s, name, rows[k], 0, LT_F32, 0, 0.5f);
            }
        }
    }
}

/* Write the tensors as model.safetensors (n_shards == 1) or as n_shards files
 * model-0000i-of-0000n.safetensors with model.safetensors.index.json (round-robin). */
static void tset_write(const tset *s, const char *dir, int n_shards) {
    lt_st_writer *w[8];
    void *bufs[256] = {0};
    for (int i = 0; i < n_shards; i++) w[i] = lt_st_writer_new();
    json_t *map = json_object();
    char file[64], path[512];
    for (int i = 0; i < s->n; i++) {
        const tw *t = &s->t[i];
        int64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        const void *data = t->data;
        if (t->dt != LT_F32) {
            uint16_t *h = malloc((size_t)n * 2);
            for (int64_t j = 0; j < n; j++)
                h[j] = t->dt == LT_BF16 ? lt_f32_to_bf16(t->data[j]) : lt_f32_to_f16(t->data[j]);
            bufs[i] = h;
            data = h;
        }
        int sh = i % n_shards;
        lt_st_writer_add(w[sh], t->name, t->dt, t->ndim, t->shape, data);
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
        json_object_set_new(map, t->name, json_string(file));
    }
    for (int i = 0; i < n_shards; i++) {
        if (n_shards == 1) snprintf(path, sizeof path, "%s/model.safetensors", dir);
        else snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, i + 1, n_shards);
        lt_st_writer_meta(w[i], "format", "pt");
        cr_assert_eq(lt_st_writer_write(w[i], path), LT_OK, "%s", lt_error_message());
        lt_st_writer_free(w[i]);
    }
    if (n_shards > 1) {
        json_t *idx = json_object();
        json_t *meta = json_object();
        json_object_set_new(meta, "total_size", json_integer(0));
        json_object_set_new(idx, "metadata", meta);
        json_object_set_new(idx, "weight_map", map);
        char *text = json_dumps(idx, JSON_INDENT(2));
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        write_text(path, text);
        free(text);
        json_decref(idx);
    } else {
        json_decref(map);
    }
    for (int i = 0; i < s->n; i++) free(bufs[i]);
}

static void write_config(const lt_model_config *c, const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(lt_hf_config_write(c, path), LT_OK, "%s", lt_error_message());
}

/* The model tensor holding HF tensor `name`. */
static const lt_tensor *model_tensor(const lt_model *m, const char *name) {
    if (!strcmp(name, "model.embed_tokens.weight")) return &m->tok_embd;
    if (!strcmp(name, "model.norm.weight")) return &m->out_norm;
    if (!strcmp(name, "lm_head.weight")) return &m->lm_head;
    char buf[128];
    for (int l = 0; l < m->cfg.n_layer; l++) {
        snprintf(buf, sizeof buf, "model.layers.%d.input_layernorm.weight", l);
        if (!strcmp(name, buf)) return &m->layers[l].attn_norm;
        snprintf(buf, sizeof buf, "model.layers.%d.post_attention_layernorm.weight", l);
        if (!strcmp(name, buf)) return &m->layers[l].ffn_norm;
        for (int k = 0; k < 7; k++) {
            snprintf(buf, sizeof buf, "model.layers.%d.%s.%s.weight", l, mod_parent(k), mod_name(k));
            if (!strcmp(name, buf)) return &m->layers[l].w[k];
            snprintf(buf, sizeof buf, "model.layers.%d.%s.%s.bias", l, mod_parent(k), mod_name(k));
            if (!strcmp(name, buf)) return &m->layers[l].bias[k];
        }
    }
    return NULL;
}

/* Every tensor of s is in m, bit for bit. */
static void expect_weights(const lt_model *m, const tset *s) {
    for (int i = 0; i < s->n; i++) {
        const tw *t = &s->t[i];
        const lt_tensor *mt = model_tensor(m, t->name);
        cr_assert(mt && mt->data, "%s not loaded", t->name);
        cr_assert_eq(lt_tensor_numel(mt), t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1), "%s",
                     t->name);
        cr_expect(!memcmp(mt->data, t->data, lt_tensor_nbytes(mt)), "%s differs", t->name);
    }
}

/* Logits [B·T, V] of a fixed packed batch (two documents in row 1), malloc'ed. */
static float *logits_of(lt_model *m, int64_t *n_out) {
    enum { B = 2, T = 9 };
    int32_t tok[B * T], pos[B * T], doc[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)((i * 37 + 11) % m->cfg.vocab_size);
        bool second = i >= T + 4;
        pos[i] = i < T ? i : second ? i - T - 4 : i - T;
        doc[i] = i < T ? 0 : second ? 2 : 1;
    }
    lt_arena a;
    lt_arena_init(&a, 1 << 20);
    lt_graph g;
    lt_graph_init(&g, &a);
    g.record = false;
    lt_tensor *y = lt_model_forward(&g, m, B, T, tok, pos, doc, 0);
    *n_out = lt_tensor_numel(y);
    float *out = malloc((size_t)*n_out * sizeof(float));
    memcpy(out, y->data, (size_t)*n_out * sizeof(float));
    lt_graph_free(&g);
    lt_arena_free(&a);
    return out;
}

static double max_rel_diff(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

static lt_model_config tiny_llama(void) {
    lt_model_config c = {0};
    c.arch = LT_ARCH_LLAMA;
    c.n_layer = 2;
    c.dim = 32;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 16; /* not dim / n_head: q_proj is [64, 32], o_proj [32, 64] */
    c.ffn_dim = 48;
    c.vocab_size = 50;
    c.context_length = 128;
    c.rope_base = 10000.0f;
    c.rms_eps = 1e-5f;
    c.bos_id = 1;
    c.eos_id = 2;
    c.dtype = LT_BF16;
    return c;
}

/* LT_ERR_MODEL whose message contains a (and b when not NULL); TL_VERBOSE=1 prints it. */
static void expect_msg(lt_status st, const char *a, const char *b) {
    cr_expect_eq(st, LT_ERR_MODEL, "status %d: %s", st, lt_error_message());
    const char *msg = lt_error_message();
    if (getenv("TL_VERBOSE")) fprintf(stderr, "message: %s\n", msg);
    cr_expect(strstr(msg, a) != NULL, "message lacks '%s': %s", a, msg);
    if (b) cr_expect(strstr(msg, b) != NULL, "message lacks '%s': %s", b, msg);
}

static char dir[256];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "hf"); }
static void teardown(void) { ts_rmtree(dir); }

/* ---- config.json -------------------------------------------------------------------------- */

/* A Llama 3.2-1B-shaped config (values from its published config.json), shrunk vocab. */
static const char *llama3_json =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
    " \"attention_bias\": false, \"attention_dropout\": 0.0, \"bos_token_id\": 128000,\n"
    " \"eos_token_id\": [128001, 128008, 128009], \"head_dim\": 64, \"hidden_act\": \"silu\",\n"
    " \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 8192,\n"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"num_attention_heads\": 32,\n"
    " \"num_hidden_layers\": 16, \"num_key_value_heads\": 8, \"pretraining_tp\": 1,\n"
    " \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,\n"
    "   \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192,\n"
    "   \"rope_type\": \"llama3\"}, \"rope_theta\": 500000.0, \"tie_word_embeddings\": true,\n"
    " \"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"vocab_size\": 128256}\n";

Test(hf, config_llama3_every_field, .init = setup, .fini = teardown) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, llama3_json);
    lt_model_config c;
    cr_assert_eq(lt_hf_config_parse(&c, p), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_LLAMA);
    cr_expect_eq(c.dim, 2048);
    cr_expect_eq(c.n_layer, 16);
    cr_expect_eq(c.n_head, 32);
    cr_expect_eq(c.n_kv_head, 8);
    cr_expect_eq(c.head_dim, 64);
    cr_expect_eq(c.ffn_dim, 8192);
    cr_expect_eq(c.vocab_size, 128256);
    cr_expect_eq(c.context_length, 131072);
    cr_expect_eq(c.rms_eps, 1e-5f);
    cr_expect_eq(c.rope_base, 500000.0f);
    cr_expect(c.tied);
    cr_expect(!c.qkv_bias && !c.o_bias);
    cr_expect_eq(c.rope_scaling.type, LT_ROPE_LLAMA3);
    cr_expect_eq(c.rope_scaling.factor, 32.0f);
    cr_expect_eq(c.rope_scaling.low_freq_factor, 1.0f);
    cr_expect_eq(c.rope_scaling.high_freq_factor, 4.0f);
    cr_expect_eq(c.rope_scaling.original_context, 8192);
    cr_expect_eq(c.sliding_window, 0);
    cr_expect_eq(c.bos_id, 128000);
    cr_expect_eq(c.eos_id, 128001); /* the first of the list */
    cr_expect_eq(c.dtype, LT_BF16);
}

Test(hf, config_defaults_and_qwen2, .init = setup, .fini = teardown) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    /* Qwen2.5-0.5B-shaped: implicit q/k/v bias, sliding window present but disabled */
    write_text(p, "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 896,\n"
                  " \"intermediate_size\": 4864, \"num_attention_heads\": 14,\n"
                  " \"num_hidden_layers\": 24, \"num_key_value_heads\": 2,\n"
                  " \"vocab_size\": 151936, \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-06,\n"
                  " \"max_position_embeddings\": 32768, \"sliding_window\": 32768,\n"
                  " \"use_sliding_window\": false, \"max_window_layers\": 21,\n"
                  " \"tie_word_embeddings\": true, \"hidden_act\": \"silu\",\n"
                  " \"rope_scaling\": null, \"eos_token_id\": 151643}\n");
    lt_model_config c;
    cr_assert_eq(lt_hf_config_parse(&c, p), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_QWEN2);
    cr_expect_eq(c.head_dim, 64);
    cr_expect(c.qkv_bias && !c.o_bias);
    cr_expect_eq(c.rope_scaling.type, LT_ROPE_DEFAULT);
    cr_expect_eq(c.sliding_window, 0, "use_sliding_window false: no window");
    cr_expect_eq(c.bos_id, -1);
    cr_expect_eq(c.eos_id, 151643);
    cr_expect_eq(c.dtype, LT_F32);

    /* minimal Llama by model_type: the transformers defaults fill the rest */
    write_text(p, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 96,\n"
                  " \"num_attention_heads\": 8, \"num_hidden_layers\": 2, \"vocab_size\": 100,\n"
                  " \"attention_bias\": true, \"rope_scaling\": {\"type\": \"linear\", "
                  "\"factor\": 2.0}}");
    cr_assert_eq(lt_hf_config_parse(&c, p), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.n_kv_head, 8);
    cr_expect_eq(c.head_dim, 8);
    cr_expect_eq(c.context_length, 2048);
    cr_expect_eq(c.rms_eps, 1e-6f);
    cr_expect_eq(c.rope_base, 10000.0f);
    cr_expect(!c.tied);
    cr_expect(c.qkv_bias && c.o_bias, "Llama attention_bias: q/k/v and o_proj");
    cr_expect_eq(c.rope_scaling.type, LT_ROPE_LINEAR);
    cr_expect_eq(c.rope_scaling.factor, 2.0f);

    /* Mistral 7B v0.1: a 4096 window under a 32768 context is accepted with a warning */
    write_text(p, "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 4096,\n"
                  " \"intermediate_size\": 14336, \"num_attention_heads\": 32,\n"
                  " \"num_hidden_layers\": 32, \"num_key_value_heads\": 8,\n"
                  " \"vocab_size\": 32000, \"max_position_embeddings\": 32768,\n"
                  " \"sliding_window\": 4096, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-05}");
    cr_assert_eq(lt_hf_config_parse(&c, p), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_MISTRAL);
    cr_expect_eq(c.sliding_window, 4096);
    cr_expect_eq(c.head_dim, 128);
}

static void expect_cfg_eq(const lt_model_config *a, const lt_model_config *b, int i) {
#define F(f) cr_expect(a->f == b->f, "config %d: " #f " changed in a round trip", i)
    F(arch); F(n_layer); F(dim); F(n_head); F(n_kv_head); F(head_dim); F(ffn_dim);
    F(vocab_size); F(context_length); F(rope_base); F(rms_eps); F(tied); F(qkv_bias); F(o_bias);
    F(sliding_window); F(bos_id); F(eos_id); F(dtype); F(rope_scaling.type);
    F(rope_scaling.factor); F(rope_scaling.low_freq_factor); F(rope_scaling.high_freq_factor);
    F(rope_scaling.original_context);
    for (int l = 0; l < a->n_layer; l++)
        cr_expect(lt_model_layer_window(a, l) == lt_model_layer_window(b, l),
                  "config %d: layer %d window %d became %d in a round trip", i, l,
                  lt_model_layer_window(b, l), lt_model_layer_window(a, l));
#undef F
}

/* write -> parse gives back the same config, for each architecture and rope scaling */
Test(hf, config_write_round_trip, .init = setup, .fini = teardown) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    lt_model_config cs[3] = {tiny_llama(), tiny_llama(), tiny_llama()};
    cs[0].rope_scaling = (lt_rope_scaling){LT_ROPE_LLAMA3, 8.0f, 1.0f, 4.0f, 64};
    cs[0].tied = true;
    cs[0].rope_base = 500000.0f;
    cs[1].arch = LT_ARCH_QWEN2;
    cs[1].qkv_bias = true;
    cs[1].rms_eps = 1e-6f;
    cs[1].rope_scaling = (lt_rope_scaling){LT_ROPE_LINEAR, 4.0f, 0, 0, 0};
    cs[2].arch = LT_ARCH_MISTRAL;
    lt_model_set_swa(&cs[2], 4096, 0); /* every layer, as MistralConfig */
    cs[2].bos_id = cs[2].eos_id = -1;
    cs[2].dtype = LT_F16;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(lt_hf_config_write(&cs[i], p), LT_OK, "%s", lt_error_message());
        lt_model_config back;
        cr_assert_eq(lt_hf_config_parse(&back, p), LT_OK, "%s", lt_error_message());
        expect_cfg_eq(&back, &cs[i], i);
    }
    /* a config its architecture cannot express is refused */
    cs[1].qkv_bias = false;
    cr_expect_eq(lt_hf_config_write(&cs[1], p), LT_ERR_MODEL);
}

/* ---- RoPE scaling ------------------------------------------------------------------------- */

/* transformers modeling_rope_utils.py _compute_llama3_parameters, in float64. */
static double ref_llama3(int i, int d, double base, double factor, double lo, double hi,
                         double orig, int *regime) {
    double inv = 1.0 / pow(base, (double)(2 * i) / d);
    double wl = 2 * M_PI / inv, lo_wl = orig / lo, hi_wl = orig / hi;
    if (wl < hi_wl) {
        *regime = 0;
        return inv;
    }
    if (wl > lo_wl) {
        *regime = 2;
        return inv / factor;
    }
    *regime = 1;
    double s = (orig / wl - lo) / (hi - lo);
    return (1 - s) * inv / factor + s * inv;
}

/* float32 arithmetic (powf, a division, a blend) vs float64: a few ulp, 2e-6 relative bounds it
 * with margin; a wrong regime or formula is off by O(1). */
#define TOL_INV_FREQ 2e-6

Test(hf, rope_inv_freq_llama3_and_linear) {
    lt_model_config c = tiny_llama();
    c.head_dim = 128;
    c.rope_base = 500000.0f;
    c.rope_scaling = (lt_rope_scaling){LT_ROPE_LLAMA3, 32.0f, 1.0f, 4.0f, 8192};
    float f[64];
    lt_rope_inv_freq(f, &c);
    int seen[3] = {0};
    for (int i = 0; i < 64; i++) {
        int regime;
        double r = ref_llama3(i, 128, 500000.0, 32.0, 1.0, 4.0, 8192.0, &regime);
        seen[regime]++;
        cr_expect(fabs(f[i] - r) <= TOL_INV_FREQ * r, "inv_freq[%d] = %.9g, reference %.9g", i,
                  f[i], r);
    }
    cr_expect(seen[0] && seen[1] && seen[2], "all three llama3 regimes (%d %d %d)", seen[0],
              seen[1], seen[2]);

    c.rope_scaling = (lt_rope_scaling){LT_ROPE_LINEAR, 4.0f, 0, 0, 0};
    lt_rope_inv_freq(f, &c);
    for (int i = 0; i < 64; i++) {
        double r = 1.0 / pow(500000.0, 2.0 * i / 128) / 4.0;
        cr_expect(fabs(f[i] - r) <= TOL_INV_FREQ * r, "linear inv_freq[%d]", i);
    }
    c.rope_scaling.type = LT_ROPE_DEFAULT;
    lt_rope_inv_freq(f, &c);
    for (int i = 0; i < 64; i++) {
        double r = 1.0 / pow(500000.0, 2.0 * i / 128);
        cr_expect(fabs(f[i] - r) <= TOL_INV_FREQ * r, "default inv_freq[%d]", i);
    }
}

/* ---- weights ------------------------------------------------------------------------------ */

Test(hf, llama_single_and_sharded_equal, .init = setup, .fini = teardown) {
    lt_model_config c = tiny_llama();
    c.rope_scaling = (lt_rope_scaling){LT_ROPE_LLAMA3, 8.0f, 1.0f, 4.0f, 32};
    tset s;
    tset_random(&s, &c, 7);
    char d1[300], d3[300];
    snprintf(d1, sizeof d1, "%s/one", dir);
    snprintf(d3, sizeof d3, "%s/three", dir);
    lt_mkdir_p(d1);
    lt_mkdir_p(d3);
    write_config(&c, d1);
    write_config(&c, d3);
    tset_write(&s, d1, 1);
    tset_write(&s, d3, 3);

    lt_model *m1 = NULL, *m3 = NULL;
    cr_assert_eq(lt_model_load(&m1, NULL, d1), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_model_load(&m3, NULL, d3), LT_OK, "%s", lt_error_message());
    cr_expect_eq(m1->cfg.head_dim, 16);
    cr_expect_eq(m1->layers[1].w[LT_MOD_Q].shape[0], 64);
    cr_expect_eq(m1->layers[1].w[LT_MOD_O].shape[1], 64);
    expect_weights(m1, &s);
    cr_assert_eq(m1->base_bytes, m3->base_bytes);
    cr_expect(!memcmp(m1->base, m3->base, m1->base_bytes), "sharded load differs from single");
    float ref[8];
    lt_rope_inv_freq(ref, &c);
    cr_expect(!memcmp(m1->rope_inv_freq.data, ref, sizeof ref), "model inv_freq is not the config's");

    int64_t n;
    float *y1 = logits_of(m1, &n), *y3 = logits_of(m3, &n);
    cr_expect(!memcmp(y1, y3, (size_t)n * sizeof(float)));
    for (int64_t i = 0; i < n; i++) cr_assert(isfinite(y1[i]));
    free(y1), free(y3);
    lt_model_free(m1);
    lt_model_free(m3);
    tset_free(&s);
}

/* A v_proj bias adds the same vector to every value row, and attention weights sum to 1, so it
 * adds W_o·e to the attention output (e: b_v repeated over the query heads of each kv group).
 * A Qwen2 model (q/k/v biases) must therefore equal a Llama attention_bias model with the same
 * q/k biases, b_v = 0 and b_o = W_o·e — which exercises every bias path through the decoder. */
Test(hf, qwen2_biases_through_the_model, .init = setup, .fini = teardown) {
    lt_model_config cq = tiny_llama();
    cq.arch = LT_ARCH_QWEN2;
    cq.qkv_bias = true;
    cq.head_dim = 8;
    cq.tied = true;
    tset sq;
    tset_random(&sq, &cq, 11);
    char dq[300], dl[300];
    snprintf(dq, sizeof dq, "%s/qwen", dir);
    snprintf(dl, sizeof dl, "%s/llama", dir);
    lt_mkdir_p(dq);
    lt_mkdir_p(dl);
    write_config(&cq, dq);
    tset_write(&sq, dq, 1);

    lt_model_config cl = cq;
    cl.arch = LT_ARCH_LLAMA;
    cl.o_bias = true;
    tset sl;
    tset_random(&sl, &cl, 11);
    const int64_t D = cq.dim, Dh = cq.head_dim, Hq = cq.n_head, grp = cq.n_head / cq.n_kv_head;
    char name[128];
    for (int i = 0; i < sl.n; i++) /* same values for the tensors both have */
        for (int j = 0; j < sq.n; j++)
            if (!strcmp(sl.t[i].name, sq.t[j].name))
                memcpy(sl.t[i].data, sq.t[j].data,
                       (size_t)(sl.t[i].shape[0] * (sl.t[i].ndim == 2 ? sl.t[i].shape[1] : 1)) *
                           sizeof(float));
    for (int l = 0; l < cq.n_layer; l++) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.bias", l);
        const float *bv = tset_get(&sq, name)->data;
        memset(tset_get(&sl, name)->data, 0, (size_t)(cq.n_kv_head * Dh) * sizeof(float));
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", l);
        const float *Wo = tset_get(&sl, name)->data; /* [D, Hq·Dh] */
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.bias", l);
        float *bo = tset_get(&sl, name)->data;
        for (int64_t o = 0; o < D; o++) {
            double acc = 0;
            for (int64_t h = 0; h < Hq; h++)
                for (int64_t d = 0; d < Dh; d++)
                    acc += (double)Wo[o * Hq * Dh + h * Dh + d] * bv[(h / grp) * Dh + d];
            bo[o] = (float)acc;
        }
    }
    write_config(&cl, dl);
    tset_write(&sl, dl, 2);

    lt_model *mq = NULL, *ml = NULL;
    cr_assert_eq(lt_model_load(&mq, NULL, dq), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_model_load(&ml, NULL, dl), LT_OK, "%s", lt_error_message());
    cr_expect(mq->layers[0].bias[LT_MOD_Q].data && !mq->layers[0].bias[LT_MOD_O].data);
    expect_weights(mq, &sq);
    expect_weights(ml, &sl);
    int64_t n;
    float *yq = logits_of(mq, &n), *yl = logits_of(ml, &n);
    /* float32 sums in another order (bias before vs after attention): ~1e-6 relative; a missing
     * or misrouted bias moves logits by O(0.1) */
    double e = max_rel_diff(yq, yl, n);
    cr_expect(e < 1e-4, "Qwen2 vs equivalent Llama logits differ by %.3g", e);

    /* and the q bias matters: zeroing it moves the logits */
    memset(mq->layers[0].bias[LT_MOD_Q].data, 0, (size_t)(Hq * Dh) * sizeof(float));
    float *y0 = logits_of(mq, &n);
    cr_expect(max_rel_diff(y0, yq, n) > 1e-3, "q_proj bias has no effect");
    free(yq), free(yl), free(y0);
    lt_model_free(mq);
    lt_model_free(ml);
    tset_free(&sq);
    tset_free(&sl);
}

/* stories260K (GGUF, llama architecture, permuted q/k) written out as an HF directory from the
 * un-permuted weights lathe holds: the HF path must give the very same logits. */
Test(hf, stories260K_gguf_equals_hf_dir, .init = setup, .fini = teardown) {
    char gguf[512];
    ts_fixture(gguf, sizeof gguf, "stories260K/stories260K.gguf");
    lt_model *mg = NULL;
    lt_tokenizer *tok = NULL;
    cr_assert_eq(lt_model_load(&mg, &tok, gguf), LT_OK, "%s", lt_error_message());
    cr_assert_not_null(tok);
    const lt_model_config *c = &mg->cfg;

    lt_st_writer *w = lt_st_writer_new();
    lt_st_writer_add(w, "model.embed_tokens.weight", LT_F32, 2, mg->tok_embd.shape,
                     mg->tok_embd.data);
    lt_st_writer_add(w, "model.norm.weight", LT_F32, 1, mg->out_norm.shape, mg->out_norm.data);
    if (!c->tied)
        lt_st_writer_add(w, "lm_head.weight", LT_F32, 2, mg->lm_head.shape, mg->lm_head.data);
    static char names[64][LT_MOD_COUNT + 2][96];
    cr_assert(c->n_layer <= 64);
    for (int l = 0; l < c->n_layer; l++) {
        const lt_layer *L = &mg->layers[l];
        snprintf(names[l][0], 96, "model.layers.%d.input_layernorm.weight", l);
        lt_st_writer_add(w, names[l][0], LT_F32, 1, L->attn_norm.shape, L->attn_norm.data);
        snprintf(names[l][1], 96, "model.layers.%d.post_attention_layernorm.weight", l);
        lt_st_writer_add(w, names[l][1], LT_F32, 1, L->ffn_norm.shape, L->ffn_norm.data);
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            snprintf(names[l][2 + k], 96, "model.layers.%d.%s.%s.weight", l, mod_parent(k),
                     mod_name(k));
            lt_st_writer_add(w, names[l][2 + k], LT_F32, 2, L->w[k].shape, L->w[k].data);
        }
    }
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(lt_st_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_st_writer_free(w);
    write_config(c, dir);

    lt_model *mh = NULL;
    cr_assert_eq(lt_model_load(&mh, NULL, dir), LT_OK, "%s", lt_error_message());
    cr_expect_eq(mh->cfg.n_layer, c->n_layer);
    cr_expect_eq(mh->cfg.n_kv_head, c->n_kv_head);
    cr_expect_eq(mh->cfg.head_dim, c->head_dim);
    cr_expect_eq(mh->cfg.rope_base, c->rope_base);
    cr_expect_eq(mh->cfg.rms_eps, c->rms_eps);
    cr_expect_eq(mh->cfg.tied, c->tied);
    cr_expect_eq(mh->cfg.bos_id, c->bos_id);
    cr_expect_eq(mh->cfg.eos_id, c->eos_id);
    int64_t n;
    float *yg = logits_of(mg, &n), *yh = logits_of(mh, &n);
    cr_expect(!memcmp(yg, yh, (size_t)n * sizeof(float)), "HF-loaded logits differ (rel %.3g)",
              max_rel_diff(yh, yg, n));
    free(yg), free(yh);
    lt_model_free(mh);

    /* end to end: with the tokenizer written beside it, `lathe generate --model DIR` reproduces
     * the llama2.c greedy continuation the GGUF golden test pins (tests/integration) */
    char golden[512], outp[600], cmd[2048];
    ts_fixture(golden, sizeof golden, "stories260K/golden_greedy.txt");
    cr_assert_eq(lt_tokenizer_write_hf(tok, dir), LT_OK, "%s", lt_error_message());
    lt_tokenizer *th = NULL;
    cr_assert_eq(lt_model_load(&mh, &th, dir), LT_OK, "%s", lt_error_message());
    cr_expect_eq(lt_tokenizer_vocab_size(th), lt_tokenizer_vocab_size(tok));
    lt_model_free(mh);
    lt_tokenizer_free(th);
    snprintf(outp, sizeof outp, "%s/stdout.txt", dir);
    snprintf(cmd, sizeof cmd, "%s generate --model '%s' --temperature 0 --max-tokens 256 > '%s' "
             "2>/dev/null", ts_lathe_bin(), dir, outp);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *got, *want;
    size_t ng, nw;
    cr_assert_eq(lt_read_file(outp, &got, &ng), LT_OK);
    cr_assert_eq(lt_read_file(golden, &want, &nw), LT_OK);
    cr_expect(ng == nw && !memcmp(got, want, nw), "HF directory generation differs from %s:\n%s",
              golden, got);
    free(got);
    free(want);
    lt_model_free(mg);
    lt_tokenizer_free(tok);
}

/* ---- bad input: one test each; the message names the file and the key or tensor ----------- */

static const char *base_json =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 32, \"intermediate_size\": 48,\n"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"num_hidden_layers\": 2,\n"
    " \"vocab_size\": 50%s}";

static lt_status load_with_config(const char *extra, const char *drop_key) {
    char text[2048], p[512];
    snprintf(text, sizeof text, base_json, extra);
    if (drop_key) { /* remove "key": value, */
        char *k = strstr(text, drop_key);
        cr_assert(k);
        char *comma = strchr(k, ',');
        memmove(k - 1, comma + 2, strlen(comma + 2) + 1);
    }
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, text);
    lt_model *m = NULL;
    lt_status st = lt_model_load(&m, NULL, dir);
    cr_expect_null(m);
    return st;
}

Test(hf, bad_missing_num_attention_heads, .init = setup, .fini = teardown) {
    expect_msg(load_with_config("", "num_attention_heads\""), "config.json", "num_attention_heads");
}

Test(hf, bad_heads_not_dividing_hidden, .init = setup, .fini = teardown) {
    expect_msg(load_with_config(", \"hidden_size\": 30", "hidden_size\""), "config.json",
               "num_attention_heads");
    cr_expect(strstr(lt_error_message(), "hidden_size") != NULL, "%s", lt_error_message());
}

Test(hf, bad_unknown_architecture, .init = setup, .fini = teardown) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, "{\"architectures\": [\"GPT2LMHeadModel\"], \"hidden_size\": 32}");
    lt_model *m = NULL;
    expect_msg(lt_model_load(&m, NULL, dir), "config.json", "GPT2LMHeadModel");
    cr_expect(strstr(lt_error_message(), "architectures") != NULL, "%s", lt_error_message());
}

Test(hf, bad_unknown_rope_scaling_type, .init = setup, .fini = teardown) {
    expect_msg(load_with_config(", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}",
                                NULL),
               "config.json", "rope_scaling");
    cr_expect(strstr(lt_error_message(), "yarn") != NULL, "%s", lt_error_message());
}

Test(hf, bad_hidden_act, .init = setup, .fini = teardown) {
    expect_msg(load_with_config(", \"hidden_act\": \"gelu\"", NULL), "config.json", "hidden_act");
}

/* a tiny valid directory whose tensor set the caller then spoils */
static void tiny_dir(tset *s, int shards) {
    lt_model_config c = tiny_llama();
    tset_random(s, &c, 3);
    write_config(&c, dir);
    tset_write(s, dir, shards);
}

Test(hf, bad_index_names_missing_shard, .init = setup, .fini = teardown) {
    tset s;
    tiny_dir(&s, 2);
    char p[512];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    cr_assert_eq(unlink(p), 0);
    lt_model *m = NULL;
    expect_msg(lt_model_load(&m, NULL, dir), "model.safetensors.index.json",
               "model-00002-of-00002.safetensors");
    cr_expect_null(m);
    tset_free(&s);
}

Test(hf, bad_tensor_shape, .init = setup, .fini = teardown) {
    tset s;
    lt_model_config c = tiny_llama();
    tset_random(&s, &c, 3);
    tw *t = tset_get(&s, "model.layers.1.mlp.up_proj.weight");
    t->shape[0] = 47; /* [47, 32] instead of [48, 32] (data just has spare floats) */
    write_config(&c, dir);
    tset_write(&s, dir, 1);
    lt_model *m = NULL;
    expect_msg(lt_model_load(&m, NULL, dir), "model.layers.1.mlp.up_proj.weight", "[47, 32]");
    cr_expect(strstr(lt_error_message(), "[48, 32]") != NULL, "%s", lt_error_message());
    cr_expect(strstr(lt_error_message(), "model.safetensors") != NULL, "%s", lt_error_message());
    tset_free(&s);
}

Test(hf, bad_missing_tensor, .init = setup, .fini = teardown) {
    tset s;
    lt_model_config c = tiny_llama();
    tset_random(&s, &c, 3);
    tw *t = tset_get(&s, "model.layers.0.self_attn.k_proj.weight");
    snprintf(t->name, sizeof t->name, "model.layers.0.self_attn.k_proj.weight_renamed");
    write_config(&c, dir);
    tset_write(&s, dir, 1);
    lt_model *m = NULL;
    expect_msg(lt_model_load(&m, NULL, dir), "model.safetensors",
               "'model.layers.0.self_attn.k_proj.weight'");
    /* and through an index: the index is named */
    tset_write(&s, dir, 2);
    expect_msg(lt_model_load(&m, NULL, dir), "model.safetensors.index.json",
               "'model.layers.0.self_attn.k_proj.weight'");
    tset_free(&s);
}

Test(hf, bad_no_weights, .init = setup, .fini = teardown) {
    lt_model_config c = tiny_llama();
    write_config(&c, dir);
    lt_model *m = NULL;
    expect_msg(lt_model_load(&m, NULL, dir), dir, "model.safetensors");
}

/* ---- never silently wrong: keys that change the function ---------------------------------- */

static lt_status parse_with(const char *extra, lt_model_config *c) {
    char text[2048], p[512];
    snprintf(text, sizeof text, base_json, extra);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, text);
    return lt_hf_config_parse(c, p);
}

/* Parse with stderr captured; returns what was logged (malloc'ed). */
static char *parse_logged(const char *extra, lt_status *st, lt_model_config *c) {
    char log[600];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    *st = parse_with(extra, c);
    fflush(stderr);
    dup2(saved, 2);
    close(fd);
    close(saved);
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(log, &text, &n), LT_OK);
    return text;
}

Test(hf, refuses_keys_that_change_the_function, .init = setup, .fini = teardown) {
    static const char *const cases[][2] = {
        {", \"attn_logit_softcapping\": 50.0", "attn_logit_softcapping"},
        {", \"final_logit_softcapping\": 30.0", "final_logit_softcapping"},
        {", \"partial_rotary_factor\": 0.5", "partial_rotary_factor"},
        {", \"num_local_experts\": 8", "num_local_experts"},
        {", \"use_qk_norm\": true", "use_qk_norm"},
        {", \"query_pre_attn_scalar\": 256", "query_pre_attn_scalar"},
        {", \"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", "yarn"},
        {", \"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.25}",
         "partial_rotary_factor"},
        {", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}, "
         "\"sliding_attention\": {\"rope_type\": \"default\"}}", "per layer type"},
        {", \"rope_scaling\": {\"factor\": 4.0}", "rope_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_model_config c;
        cr_expect_eq(parse_with(cases[i][0], &c), LT_ERR_MODEL, "accepted: %s", cases[i][0]);
        cr_expect(strstr(lt_error_message(), cases[i][1]) != NULL, "%s: message '%s' does not "
                  "name %s", cases[i][0], lt_error_message(), cases[i][1]);
        cr_expect(strstr(lt_error_message(), "config.json") != NULL, "%s", lt_error_message());
    }
    /* their neutral values are the model lathe builds */
    lt_model_config c;
    cr_expect_eq(parse_with(", \"partial_rotary_factor\": 1.0, \"final_logit_softcapping\": null,"
                            " \"num_local_experts\": 0, \"use_qk_norm\": false", &c),
                 LT_OK, "%s", lt_error_message());
}

/* transformers 5 keeps RoPE in rope_parameters; older configs in rope_theta + rope_scaling. Both
 * spellings give the same config, and a config whose two spellings disagree is refused. */
Test(hf, rope_parameters_and_legacy_spelling, .init = setup, .fini = teardown) {
    lt_model_config a, b;
    cr_assert_eq(parse_with(", \"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": "
                            "500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                            "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": "
                            "8192}", &a), LT_OK, "%s", lt_error_message());
    cr_expect_eq(a.rope_base, 500000.0f, "rope_parameters.rope_theta was not applied");
    cr_expect_eq(a.rope_scaling.type, LT_ROPE_LLAMA3);
    cr_expect_eq(a.rope_scaling.factor, 8.0f);
    cr_expect_eq(a.rope_scaling.original_context, 8192);
    cr_assert_eq(parse_with(", \"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": "
                            "\"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                            "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": "
                            "8192}", &b), LT_OK, "%s", lt_error_message());
    cr_expect(a.rope_base == b.rope_base && a.rope_scaling.type == b.rope_scaling.type &&
              a.rope_scaling.factor == b.rope_scaling.factor);
    /* both spellings at once, agreeing (as transformers 5 accepts): fine */
    cr_expect_eq(parse_with(", \"rope_theta\": 1e6, \"rope_parameters\": {\"rope_type\": "
                            "\"default\", \"rope_theta\": 1e6}", &a), LT_OK, "%s",
                 lt_error_message());
    cr_expect_eq(a.rope_base, 1e6f);
    /* llama3 without original_max_position_embeddings: transformers 5 uses
     * max_position_embeddings */
    cr_expect_eq(parse_with(", \"max_position_embeddings\": 4096, \"rope_parameters\": "
                            "{\"rope_type\": \"llama3\", \"rope_theta\": 1e4, \"factor\": 8.0, "
                            "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}", &a), LT_OK,
                 "%s", lt_error_message());
    cr_expect_eq(a.rope_scaling.original_context, 4096);
    /* disagreements are refused, naming both keys */
    cr_expect_eq(parse_with(", \"rope_theta\": 10000.0, \"rope_parameters\": {\"rope_type\": "
                            "\"default\", \"rope_theta\": 500000.0}", &a), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "rope_parameters.rope_theta") &&
              strstr(lt_error_message(), "rope_theta = "), "%s", lt_error_message());
    cr_expect_eq(parse_with(", \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}, "
                            "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": "
                            "1e4}", &a), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "rope_scaling"), "%s", lt_error_message());
}

Test(hf, unknown_keys_warn_by_name, .init = setup, .fini = teardown) {
    lt_status st;
    lt_model_config c;
    char *log = parse_logged(", \"use_cache\": true, \"transformers_version\": \"5.0\", "
                             "\"mystery_scale\": 2.0, \"sliding_window\": 16", &st, &c);
    cr_expect_eq(st, LT_OK, "%s", lt_error_message());
    cr_expect(strstr(log, "mystery_scale") != NULL, "no warning naming the key: '%s'", log);
    cr_expect(strstr(log, "sliding_window") != NULL,
              "LlamaForCausalLM ignores sliding_window (as transformers does) and says so: '%s'",
              log);
    cr_expect(strstr(log, "use_cache") == NULL, "inert keys are not warned about: '%s'", log);
    cr_expect_eq(lt_model_layer_window(&c, 0), 0);
    free(log);
}

/* Sliding windows as transformers 5 resolves them (configuration_mistral.py, _qwen2.py). */
Test(hf, sliding_window_layers, .init = setup, .fini = teardown) {
    char p[512], text[2048];
    snprintf(p, sizeof p, "%s/config.json", dir);
    const char *head = "{\"architectures\": [\"%s\"], \"hidden_size\": 32, \"intermediate_size\": 48,"
                       " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                       "\"num_hidden_layers\": 4, \"vocab_size\": 50%s}";
    static const struct {
        const char *arch, *extra;
        int w[4];
    } cases[] = {
        {"MistralForCausalLM", "", {4096, 4096, 4096, 4096}}, /* absent: the class default */
        {"MistralForCausalLM", ", \"sliding_window\": null", {0, 0, 0, 0}},
        {"MistralForCausalLM", ", \"sliding_window\": 8", {8, 8, 8, 8}},
        {"Qwen2ForCausalLM", ", \"sliding_window\": 8", {0, 0, 0, 0}}, /* not used */
        {"Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 8, "
                             "\"max_window_layers\": 2", {0, 0, 8, 8}},
        {"Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 8, "
                             "\"max_window_layers\": 2, \"layer_types\": [\"sliding_attention\", "
                             "\"full_attention\", \"sliding_attention\", \"full_attention\"]",
         {8, 0, 8, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, head, cases[i].arch, cases[i].extra);
        write_text(p, text);
        lt_model_config c;
        cr_assert_eq(lt_hf_config_parse(&c, p), LT_OK, "case %zu: %s", i, lt_error_message());
        for (int l = 0; l < 4; l++)
            cr_expect_eq(lt_model_layer_window(&c, l), cases[i].w[l], "case %zu layer %d", i, l);
        /* and the config.json lathe writes says the same */
        char q[600];
        snprintf(q, sizeof q, "%s/written.json", dir);
        cr_assert_eq(lt_hf_config_write(&c, q), LT_OK, "%s", lt_error_message());
        lt_model_config back;
        cr_assert_eq(lt_hf_config_parse(&back, q), LT_OK, "%s", lt_error_message());
        for (int l = 0; l < 4; l++)
            cr_expect_eq(lt_model_layer_window(&back, l), cases[i].w[l],
                         "case %zu layer %d after a write", i, l);
    }
    snprintf(text, sizeof text, head, "Qwen2ForCausalLM",
             ", \"layer_types\": [\"sliding_attention\", \"full_attention\", \"full_attention\", "
             "\"full_attention\"]");
    write_text(p, text);
    lt_model_config c;
    cr_expect_eq(lt_hf_config_parse(&c, p), LT_ERR_MODEL, "a sliding layer without a window");
    cr_expect(strstr(lt_error_message(), "layer_types[0]"), "%s", lt_error_message());
}
