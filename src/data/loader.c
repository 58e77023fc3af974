/*
 * Loader: turns validated shards into micro-batches. Documents are numbered globally (shards in
 * sorted glob order, documents in file order; empty documents dropped). Each epoch walks a
 * permutation of them (identity without shuffle) and cuts rows of T positions from that stream
 * (packing) or one document piece per row (no packing). The cursor (epoch, doc_index,
 * doc_offset) fully determines what comes next, so checkpoints restore bit-exactly.
 *
 * PRNG: xoshiro256** 1.0 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro256starstar.c),
 * state seeded by splitmix64 from seed ^ (golden-ratio constant · (epoch + 1)); bounded draws by
 * Lemire's multiply-shift with rejection (unbiased); Fisher–Yates from the last index down.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1 (Lemire 2019, "Fast random integer generation in an interval"). */
static uint64_t rng_below(rng *r, uint64_t n) {
    unsigned __int128 m = (unsigned __int128)rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t thresh = -n % n;
        while (lo < thresh) {
            m = (unsigned __int128)rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

struct lt_loader {
    lt_loader_opts o;
    lt_shard **shards;
    size_t n_shards;
    /* weighted mixture (o.weights): datasets' documents are contiguous in the global numbering */
    int n_sets;
    double *cum_weight;    /* [n_sets] running sums of the weights */
    int64_t *set_start;    /* [n_sets + 1] first document of each dataset */
    int64_t *set_order;    /* [n_docs] each dataset's current shuffled order, in its own span */
    size_t *set_first_shard; /* [n_sets + 1] first shard of each dataset */
    lt_shard_meta meta;
    int32_t pad;           /* pad_id, or 0 when the shards name none */
    int64_t n_docs;        /* non-empty documents */
    int32_t *doc_shard;    /* [n_docs] */
    int64_t *doc_start;    /* [n_docs] token offset inside its shard */
    int64_t *doc_len;      /* [n_docs] */
    int64_t *perm;         /* [n_docs] this epoch's order */
    int64_t perm_epoch;    /* epoch perm was built for */
    lt_loader_state cur;
    lt_loader_totals totals;
    int32_t *ids;          /* [T + 1] read buffer */
    uint8_t *mask;         /* [T + 1] */
};

static void rng_seed(rng *r, uint64_t x) {
    for (int k = 0; k < 4; k++) r->s[k] = lt_splitmix64(&x);
}

/* Fisher–Yates over a[0, n), from the last index down. */
static void shuffle(int64_t *a, int64_t n, rng *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Epoch `epoch` of a weighted mixture (see lt_loader_open): one draw of the dataset per slot,
 * then that dataset's next document; its order is reshuffled, from (seed, epoch, dataset, pass),
 * whenever it runs out. */
static void build_mixed_perm(lt_loader *l, int64_t epoch) {
    const uint64_t base = l->o.seed ^ (LT_SPLITMIX64_GOLDEN * (uint64_t)(epoch + 1));
    rng draw;
    rng_seed(&draw, base ^ 0x6d69787475726500ull); /* "mixture" */
    int64_t used[l->n_sets];
    for (int g = 0; g < l->n_sets; g++) used[g] = 0;
    const double total = l->cum_weight[l->n_sets - 1];
    for (int64_t i = 0; i < l->n_docs; i++) {
        double u = (double)(rng_next(&draw) >> 11) * 0x1p-53 * total;
        int g = 0;
        while (g < l->n_sets - 1 && u >= l->cum_weight[g]) g++;
        int64_t start = l->set_start[g], n = l->set_start[g + 1] - start, c = used[g]++;
        int64_t k = c % n;
        if (k == 0) { /* pass c / n over dataset g begins */
            rng r;
            uint64_t id = (uint64_t)g << 40 ^ (uint64_t)(c / n);
            rng_seed(&r, base ^ lt_splitmix64(&id));
            for (int64_t j = 0; j < n; j++) l->set_order[start + j] = start + j;
            shuffle(l->set_order + start, n, &r);
        }
        l->perm[i] = l->set_order[start + k];
    }
}

static void build_perm(lt_loader *l, int64_t epoch) {
    l->perm_epoch = epoch;
    if (l->o.shuffle && l->n_sets > 0) {
        build_mixed_perm(l, epoch);
        return;
    }
    for (int64_t i = 0; i < l->n_docs; i++) l->perm[i] = i;
    if (!l->o.shuffle) return;
    rng r;
    rng_seed(&r, l->o.seed ^ (LT_SPLITMIX64_GOLDEN * (uint64_t)(epoch + 1)));
    shuffle(l->perm, l->n_docs, &r);
}

/* Rows one epoch takes in the current perm (length-only replay of lt_loader_next). */
static int64_t count_rows(const lt_loader *l) {
    int64_t T = l->o.seq_len, rows = 0, p = 0;
    for (int64_t i = 0; i < l->n_docs; i++) {
        int64_t left = l->doc_len[l->perm[i]];
        while (left > 0) {
            int64_t r = T - p, k = r < left ? r : left;
            p += k;
            if (p == T || !l->o.pack) {
                rows++;
                p = 0;
            }
            left = left - k > 1 ? left - k : 0;
        }
    }
    return rows + (p > 0);
}

void lt_batch_init(lt_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    size_t n = (size_t)B * (size_t)T;
    b->tokens = lt_xmalloc(n * sizeof *b->tokens);
    b->targets = lt_xmalloc(n * sizeof *b->targets);
    b->pos = lt_xmalloc(n * sizeof *b->pos);
    b->doc = lt_xmalloc(n * sizeof *b->doc);
}

void lt_batch_free(lt_batch *b) {
    if (!b) return;
    free(b->tokens);
    free(b->targets);
    free(b->pos);
    free(b->doc);
    memset(b, 0, sizeof *b);
}

/* With weights: each pattern's shards, in pattern order (a dataset each); *first[i] is the
 * index of pattern i's first shard. LT_ERR_DATA when a shard matches two patterns. */
static lt_status glob_sets(const lt_loader_opts *o, char ***paths, size_t *n, size_t *first) {
    *paths = NULL;
    *n = 0;
    lt_status st = LT_OK;
    for (size_t i = 0; i < o->n_patterns && !st; i++) {
        char **pp;
        size_t pn;
        first[i] = *n;
        if ((st = lt_shard_glob(&pp, &pn, &o->patterns[i], 1))) break;
        *paths = lt_xrealloc(*paths, (*n + pn + 1) * sizeof **paths);
        for (size_t j = 0; j < pn; j++) {
            for (size_t q = 0; q < *n && !st; q++)
                if (!strcmp((*paths)[q], pp[j]))
                    st = lt_error_set(LT_ERR_DATA, "%s: matched by two weighted data entries "
                                      "('%s' and an earlier one); hint: each shard may belong to "
                                      "one entry only", pp[j], o->patterns[i]);
            (*paths)[(*n)++] = pp[j];
        }
        free(pp);
    }
    first[o->n_patterns] = *n;
    return st;
}

static lt_status open_shards(lt_loader *l) {
    char **paths;
    size_t n;
    size_t first[l->o.weights ? l->o.n_patterns + 1 : 1];
    lt_status st = l->o.weights ? glob_sets(&l->o, &paths, &n, first)
                                : lt_shard_glob(&paths, &n, l->o.patterns, l->o.n_patterns);
    if (st) {
        if (l->o.weights) lt_paths_free(paths, n);
        return st;
    }
    if (l->o.weights) {
        l->n_sets = (int)l->o.n_patterns;
        l->cum_weight = lt_xmalloc((size_t)l->n_sets * sizeof *l->cum_weight);
        l->set_start = lt_xcalloc((size_t)l->n_sets + 1, sizeof *l->set_start);
        l->set_first_shard = lt_xmalloc(((size_t)l->n_sets + 1) * sizeof *l->set_first_shard);
        double sum = 0;
        for (int g = 0; g < l->n_sets; g++) {
            sum += l->o.weights[g];
            l->cum_weight[g] = sum;
            l->set_first_shard[g] = first[g];
        }
        l->set_first_shard[l->n_sets] = first[l->n_sets];
    }
    l->shards = lt_xcalloc(n ? n : 1, sizeof *l->shards);
    for (size_t i = 0; i < n && !st; i++) {
        st = lt_shard_open(&l->shards[i], paths[i], &l->o.expect);
        if (st) break;
        l->n_shards++;
        const lt_shard_meta *a = &l->shards[0]->meta, *b = &l->shards[i]->meta;
        const char *what = a->vocab_size != b->vocab_size ? "vocab_size"
                           : strcmp(a->tokenizer_sha256, b->tokenizer_sha256) ? "tokenizer_sha256"
                           : a->pad_id != b->pad_id ? "pad_id" : NULL;
        if (what)
            st = lt_error_set(LT_ERR_DATA, "%s: attribute '%s' differs from %s's (hint: all "
                              "shards of a dataset must come from one tokenizer)", paths[i],
                              what, paths[0]);
    }
    lt_paths_free(paths, n);
    return st;
}

lt_status lt_loader_open(lt_loader **out, const lt_loader_opts *o) {
    *out = NULL;
    if (o->seq_len < 1 || o->batch_rows < 1)
        return lt_error_set(LT_ERR_USAGE, "loader: seq_len (%d) and batch rows (%d) must be >= 1",
                            o->seq_len, o->batch_rows);
    if (o->n_patterns == 0)
        return lt_error_set(LT_ERR_USAGE, "loader: no shard paths given");
    for (size_t i = 0; o->weights && i < o->n_patterns; i++)
        if (!(o->weights[i] > 0 && o->weights[i] < INFINITY))
            return lt_error_set(LT_ERR_USAGE, "%s: weight %g is not a positive number",
                                o->patterns[i], o->weights[i]);
    lt_loader *l = lt_xcalloc(1, sizeof *l);
    l->o = *o;
    lt_status st = open_shards(l);
    l->o.patterns = NULL; /* not kept: the caller's arrays may go away */
    l->o.n_patterns = 0;
    l->o.weights = NULL;
    l->o.expect.tokenizer_sha256 = NULL;
    if (st) {
        lt_loader_free(l);
        return st;
    }
    l->meta = l->shards[0]->meta;
    l->pad = l->meta.pad_id >= 0 ? (int32_t)l->meta.pad_id : 0;
    lt_loader_totals *t = &l->totals;
    t->n_shards = (int64_t)l->n_shards;
    int64_t cap = 0;
    for (size_t s = 0; s < l->n_shards; s++) {
        cap += l->shards[s]->n_docs;
        t->n_tokens += l->shards[s]->n_tokens;
        t->n_trainable += l->shards[s]->n_trainable;
        t->n_targets += l->shards[s]->n_targets;
    }
    l->doc_shard = lt_xmalloc((size_t)(cap ? cap : 1) * sizeof *l->doc_shard);
    l->doc_start = lt_xmalloc((size_t)(cap ? cap : 1) * sizeof *l->doc_start);
    l->doc_len = lt_xmalloc((size_t)(cap ? cap : 1) * sizeof *l->doc_len);
    l->perm = lt_xmalloc((size_t)(cap ? cap : 1) * sizeof *l->perm);
    int g = 0;
    for (size_t s = 0; s < l->n_shards; s++) {
        const lt_shard *sh = l->shards[s];
        for (; g < l->n_sets && l->set_first_shard[g] <= s; g++) l->set_start[g] = l->n_docs;
        for (int64_t d = 0; d < sh->n_docs; d++) {
            int64_t len = (int64_t)(sh->doc_offsets[d + 1] - sh->doc_offsets[d]);
            if (len == 0) continue;
            l->doc_shard[l->n_docs] = (int32_t)s;
            l->doc_start[l->n_docs] = (int64_t)sh->doc_offsets[d];
            l->doc_len[l->n_docs] = len;
            l->n_docs++;
        }
    }
    for (; g <= l->n_sets && l->n_sets; g++) l->set_start[g] = l->n_docs;
    for (g = 0; g < l->n_sets && !st; g++)
        if (l->set_start[g + 1] == l->set_start[g])
            st = lt_error_set(LT_ERR_DATA, "%s: the shards of this weighted data entry hold no "
                              "tokens (hint: check its files)", o->patterns[g]);
    if (l->n_sets) l->set_order = lt_xmalloc((size_t)(cap ? cap : 1) * sizeof *l->set_order);
    if (st || l->n_docs == 0) {
        if (!st)
            st = lt_error_set(LT_ERR_DATA, "%s: the shards hold no tokens (hint: check the "
                              "input given to `lathe tokenize`)", l->shards[0]->path);
        lt_loader_free(l);
        return st;
    }
    t->n_docs = l->n_docs;
    l->ids = lt_xmalloc(((size_t)o->seq_len + 1) * sizeof *l->ids);
    l->mask = lt_xmalloc((size_t)o->seq_len + 1);
    build_perm(l, 0);
    t->rows_per_epoch = count_rows(l);
    t->batches_per_epoch = (t->rows_per_epoch + o->batch_rows - 1) / o->batch_rows;
    l->cur = (lt_loader_state){.seed = o->seed, .n_docs = l->n_docs};
    *out = l;
    return LT_OK;
}

void lt_loader_free(lt_loader *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n_shards; i++) lt_shard_close(l->shards[i]);
    free(l->shards);
    free(l->doc_shard);
    free(l->doc_start);
    free(l->doc_len);
    free(l->perm);
    free(l->cum_weight);
    free(l->set_start);
    free(l->set_order);
    free(l->set_first_shard);
    free(l->ids);
    free(l->mask);
    free(l);
}

/* One batch from the cursor into b, or (b == NULL) only the cursor's advance: the same walk
 * over document lengths without reading a shard, so that every rank moves its cursor over the
 * micro-batches of the other ranks at no I/O cost. */
static lt_status next_batch(lt_loader *l, lt_batch *b, bool *epoch_end) {
    LT_ASSERT(!b || (b->B == l->o.batch_rows && b->T == l->o.seq_len));
    const int B = l->o.batch_rows, T = l->o.seq_len;
    lt_loader_state *c = &l->cur;
    if (l->perm_epoch != c->epoch) build_perm(l, c->epoch);
    bool ended = false;
    if (b) {
        b->n_target_tokens = 0;
        b->n_rows_used = 0;
    }
    for (int row = 0; row < B; row++) {
        int p = 0, piece = 0;
        while (p < T && !ended) {
            if (c->doc_index >= l->n_docs) {
                ended = true;
                break;
            }
            int64_t d = l->perm[c->doc_index];
            int64_t left = l->doc_len[d] - c->doc_offset;
            int64_t k = T - p < left ? T - p : left;  /* inputs placed */
            if (b) {
                int32_t *tok = b->tokens + (size_t)row * T, *tgt = b->targets + (size_t)row * T;
                int32_t *pos = b->pos + (size_t)row * T, *doc = b->doc + (size_t)row * T;
                int64_t need = k + 1 < left ? k + 1 : left; /* tokens read (k + next target) */
                const lt_shard *sh = l->shards[l->doc_shard[d]];
                lt_status st = lt_shard_read(sh, l->doc_start[d] + c->doc_offset, need, l->ids,
                                             l->mask);
                if (st) return st;
                for (int64_t i = 0; i < k; i++) {
                    tok[p + i] = l->ids[i];
                    pos[p + i] = (int32_t)i;
                    doc[p + i] = piece;
                    bool has_next = i + 1 < need;
                    tgt[p + i] = has_next && l->mask[i + 1] ? l->ids[i + 1] : -1;
                    b->n_target_tokens += tgt[p + i] >= 0;
                }
            }
            p += (int)k;
            piece++;
            if (left - k > 1) {
                c->doc_offset += k; /* split: the next piece starts at this piece's last target */
            } else {
                c->doc_index++;
                c->doc_offset = 0;
            }
            if (!l->o.pack) break;
        }
        if (!b) continue;
        if (p > 0) b->n_rows_used++;
        int32_t *tok = b->tokens + (size_t)row * T, *tgt = b->targets + (size_t)row * T;
        int32_t *pos = b->pos + (size_t)row * T, *doc = b->doc + (size_t)row * T;
        for (; p < T; p++) {
            tok[p] = l->pad;
            tgt[p] = -1;
            pos[p] = 0;
            doc[p] = piece;
        }
    }
    if (c->doc_index >= l->n_docs) ended = true;
    if (ended) {
        c->epoch++;
        c->doc_index = 0;
        c->doc_offset = 0;
        build_perm(l, c->epoch);
    }
    if (epoch_end) *epoch_end = ended;
    return LT_OK;
}

lt_status lt_loader_next(lt_loader *l, lt_batch *b, bool *epoch_end) {
    return next_batch(l, b, epoch_end);
}

void lt_loader_skip(lt_loader *l, bool *epoch_end) { next_batch(l, NULL, epoch_end); }

void lt_loader_totals_get(const lt_loader *l, lt_loader_totals *t) { *t = l->totals; }

lt_loader_state lt_loader_get_state(const lt_loader *l) { return l->cur; }

lt_status lt_loader_set_state(lt_loader *l, const lt_loader_state *s) {
    if (s->seed != l->o.seed || s->n_docs != l->n_docs)
        return lt_error_set(LT_ERR_DATA, "data cursor is for another dataset (seed %llu, %lld "
                            "documents; this one: seed %llu, %lld documents) (hint: resume with "
                            "the same shards and data.seed)", (unsigned long long)s->seed,
                            (long long)s->n_docs, (unsigned long long)l->o.seed,
                            (long long)l->n_docs);
    if (s->epoch < 0 || s->doc_index < 0 || s->doc_index >= l->n_docs || s->doc_offset < 0)
        return lt_error_set(LT_ERR_DATA, "data cursor out of range (epoch %lld, document %lld)",
                            (long long)s->epoch, (long long)s->doc_index);
    build_perm(l, s->epoch);
    if (s->doc_offset >= l->doc_len[l->perm[s->doc_index]]) {
        build_perm(l, l->cur.epoch);
        return lt_error_set(LT_ERR_DATA, "data cursor offset %lld is past the end of document "
                            "%lld", (long long)s->doc_offset, (long long)s->doc_index);
    }
    l->cur = *s;
    return LT_OK;
}

void lt_loader_rewind(lt_loader *l) {
    l->cur.doc_index = 0;
    l->cur.doc_offset = 0;
}

const lt_shard_meta *lt_loader_meta(const lt_loader *l) { return &l->meta; }
