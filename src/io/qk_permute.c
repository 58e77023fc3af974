/*
 * Q/K row permutation between Hugging Face and llama.cpp GGUF layouts (llama architecture).
 *
 * Source: llama.cpp convert_hf_to_gguf.py, LlamaModel.permute:
 *   w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
 * With head_dim = rows / n_head and half = head_dim / 2, inside head h the GGUF row h·head_dim +
 * 2i + j holds the HF row h·head_dim + j·half + i (i < half, j < 2): HF keeps the two rotary
 * halves apart (rotate_half), GGUF interleaves them as pairs.
 */
#include "io.h"

#include <stdlib.h>
#include <string.h>

/* One head at a time through a head-sized scratch buffer. to_gguf selects the direction. */
static void permute_rows(float *w, int64_t rows, int64_t cols, int n_head, bool to_gguf) {
    LT_ASSERT(n_head > 0 && rows > 0 && cols >= 0 && rows % (2 * (int64_t)n_head) == 0);
    int64_t head_dim = rows / n_head, half = head_dim / 2;
    size_t row_bytes = (size_t)cols * sizeof(float);
    float *tmp = lt_xmalloc((size_t)head_dim * row_bytes + 1);
    for (int h = 0; h < n_head; h++) {
        float *hw = w + (int64_t)h * head_dim * cols;
        memcpy(tmp, hw, (size_t)head_dim * row_bytes);
        for (int64_t i = 0; i < half; i++)
            for (int64_t j = 0; j < 2; j++) {
                int64_t gguf_row = 2 * i + j, hf_row = j * half + i;
                int64_t dst = to_gguf ? gguf_row : hf_row, src = to_gguf ? hf_row : gguf_row;
                memcpy(hw + dst * cols, tmp + src * cols, row_bytes);
            }
    }
    free(tmp);
}

void lt_qk_unpermute(float *w, int64_t rows, int64_t cols, int n_head) {
    permute_rows(w, rows, cols, n_head, false);
}

void lt_qk_permute(float *w, int64_t rows, int64_t cols, int n_head) {
    permute_rows(w, rows, cols, n_head, true);
}
