/* dtype metadata and scalar float conversions.
 * Block layouts: ggml src/ggml-common.h (Q8_0, Q4_0, Q4_1: 32 elements, F16 scale first);
 * NF4: bitsandbytes, two codes per byte, block of 64 by default (absmax stored separately, so a
 * "block" here is two elements in one byte). */
#include "core.h"

#include <string.h>

static const struct {
    const char *name;
    int64_t block_elems;
    size_t block_bytes;
} dtype_info[LT_DTYPE_COUNT] = {
    [LT_F32] = {"F32", 1, 4},   [LT_F16] = {"F16", 1, 2},    [LT_BF16] = {"BF16", 1, 2},
    [LT_I32] = {"I32", 1, 4},   [LT_U8] = {"U8", 1, 1},      [LT_Q8_0] = {"Q8_0", 32, 34},
    [LT_Q4_0] = {"Q4_0", 32, 18}, [LT_Q4_1] = {"Q4_1", 32, 20}, [LT_NF4] = {"NF4", 2, 1},
};

const char *lt_dtype_name(lt_dtype t) {
    return (unsigned)t < LT_DTYPE_COUNT ? dtype_info[t].name : "?";
}
int64_t lt_dtype_block_elems(lt_dtype t) { return dtype_info[t].block_elems; }
size_t lt_dtype_block_bytes(lt_dtype t) { return dtype_info[t].block_bytes; }

size_t lt_dtype_nbytes(lt_dtype t, int64_t n) {
    int64_t be = dtype_info[t].block_elems;
    LT_ASSERT(n % be == 0);
    return (size_t)(n / be) * dtype_info[t].block_bytes;
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float lt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return u2f(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return u2f(sign | 0x7f800000u | (mant << 13));
    return u2f(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t lt_f32_to_f16(float f) {
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t absu = u & 0x7fffffffu;
    if (absu >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absu > 0x7f800000u ? 0x200 : 0));
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absu < 0x38800000u) {                                   /* below 2^-14: subnormal */
        /* value / 2^-24, rounded to nearest even */
        float v = u2f(absu) * 16777216.0f;
        uint32_t m = (uint32_t)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t mant = absu & 0x7fffff, exp = (absu >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float lt_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t lt_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
