/* `lathe generate` golden test: stories260K from BOS with an empty prompt, greedy, 256 steps,
 * must reproduce the published llama2.c continuation (fixtures' golden_greedy.txt) byte for byte.
 * That pins the GGUF loader (incl. the Q/K un-permutation), the forward pass, the KV cache, greedy
 * sampling and SentencePiece decoding at once. */
#include "../support.h"

static char tmp[256];
static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "generate"); }
static void teardown(void) { ts_rmtree(tmp); }

Test(generate, stories260k_golden_greedy, .init = setup, .fini = teardown) {
    char model[1024], golden[1024], args[2048], cmd[4096], outp[512];
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    ts_fixture(golden, sizeof golden, "stories260K/golden_greedy.txt");
    /* stdout only: the generated text must not be mixed with anything else */
    snprintf(outp, sizeof outp, "%s/stdout.txt", tmp);
    snprintf(args, sizeof args, "generate --model %s --temperature 0 --max-tokens 256", model);
    snprintf(cmd, sizeof cmd, "%s %s > '%s' 2>/dev/null", ts_lathe_bin(), args, outp);
    cr_assert_eq(system(cmd), 0);
    char *got, *want;
    size_t ng, nw;
    cr_assert_eq(lt_read_file(outp, &got, &ng), LT_OK);
    cr_assert_eq(lt_read_file(golden, &want, &nw), LT_OK);
    size_t i = 0;
    while (i < ng && i < nw && got[i] == want[i]) i++;
    cr_assert(ng == nw && i == nw, "output differs from %s at byte %zu (got %zu bytes, want %zu):"
              "\n--- got ---\n%s\n--- want ---\n%s", golden, i, ng, nw, got, want);
    free(got);
    free(want);
}

Test(generate, sampling_is_seeded, .init = setup, .fini = teardown) {
    char model[1024], args[2048], *a, *b, *c;
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    snprintf(args, sizeof args, "generate --model %s --prompt 'Once upon' --temperature 1 "
             "--top-p 0.9 --max-tokens 40 --seed 7", model);
    cr_assert_eq(ts_run(tmp, args, &a), 0, "%s", a);
    cr_assert_eq(ts_run(tmp, args, &b), 0, "%s", b);
    cr_assert_str_eq(a, b, "the same seed gave different text");
    snprintf(args, sizeof args, "generate --model %s --prompt 'Once upon' --temperature 1 "
             "--top-p 0.9 --max-tokens 40 --seed 8", model);
    cr_assert_eq(ts_run(tmp, args, &c), 0, "%s", c);
    cr_assert_str_neq(a, c, "different seeds gave the same text");
    free(a);
    free(b);
    free(c);
}
