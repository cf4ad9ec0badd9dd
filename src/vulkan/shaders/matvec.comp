// Matrix times activation rows: y[col][row] = sum_i W[row][i] * x[col][i], in float32.
// A workgroup takes ROWS output rows of COLS activation rows (decode: one; prefill: the
// weights are read once for COLS of them): LANES = LOCAL / ROWS threads per row take its
// blocks (or elements) in turn, each keeping a sum per activation row, and a tree in shared
// memory adds their sums. The weight type is chosen
// at build time (-DWT_F32, WT_F16, WT_BF16, WT_Q8_0, WT_Q4_0, WT_Q4_1, WT_Q5_0, WT_Q5_1, WT_Q2_K,
// WT_Q3_K, WT_Q4_K, WT_Q5_K, WT_Q6_K, WT_IQ4_NL, WT_IQ4_XS); its rows are ggml's bytes as stored
// in GGUF, read through 32-bit words (so neither 8- nor 16-bit storage is needed, and
// MoltenVK takes the shader as it is). Blocks need not start on a word (Q4_0's are 18 bytes,
// Q3_K's 110): every field is read a byte at a time (byte_at), except the fp16 and bf16
// values, which lie at even offsets of every block of every type, so at an even byte
// (the host keeps w_base even) and never across a word.
// Two device features have their own build of each type, chosen at run time (src/vulkan/vk.c)
// from what the device reports; the arithmetic, and so every result, is the same bit for bit:
//   USE_STORAGE   8- and 16-bit storage: bytes, fp16 and bf16 values are loaded as such
//                 (uint8_t / float16_t / uint16_t arrays) instead of cut out of words;
//   USE_SUBGROUP  subgroup shuffles: a row's LANES sums are added by a butterfly in registers
//                 (xor 4, 2, 1, which pairs them as the shared-memory tree does) instead of
//                 through shared memory and barriers. Threads are numbered by subgroup
//                 (gl_SubgroupID, gl_SubgroupInvocationID), so a row's lanes share one
//                 subgroup whatever the device's subgroup size (at least LANES).
#version 450
#if defined(USE_STORAGE)
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require
#endif
#if defined(USE_SUBGROUP)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif

#define LOCAL 64
#define ROWS 8
#define LANES (LOCAL / ROWS)
#define COLS 8
layout(local_size_x = LOCAL) in;

#if defined(USE_STORAGE) && defined(WT_F16)
layout(std430, binding = 0) readonly buffer Weights { float16_t w16[]; };
#elif defined(USE_STORAGE) && defined(WT_BF16)
layout(std430, binding = 0) readonly buffer Weights { uint16_t w16[]; };
#elif defined(USE_STORAGE) && !defined(WT_F32)
layout(std430, binding = 0) readonly buffer Weights { uint8_t w8[]; };
#else
layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
#endif
layout(std430, binding = 1) readonly buffer Inputs { float x[]; };
layout(std430, binding = 2) writeonly buffer Outputs { float y[]; };

layout(push_constant) uniform Params {
    uint k;          // elements per row
    uint row_bytes;  // bytes per weight row
    uint w_base;     // byte offset of this dispatch's first row in the bound weight range
    uint x_stride;   // floats between activation rows
    uint y_stride;   // floats between output rows
    uint y_base;     // float offset of this dispatch's first output
    uint n_rows;     // rows of this dispatch
    uint n_cols;     // activation rows in all (a workgroup takes COLS of them)
} p;

#if !defined(USE_SUBGROUP)
shared float part[LOCAL * COLS];
#endif

#if defined(USE_STORAGE) && defined(WT_F16)
float half_at(uint b) { return float(w16[b >> 1]); }
#elif defined(USE_STORAGE) && defined(WT_BF16)
float bf16_at(uint b) { return uintBitsToFloat(uint(w16[b >> 1]) << 16); }
#elif defined(USE_STORAGE) && !defined(WT_F32)
uint byte_at(uint b) { return uint(w8[b]); }
// an fp16 at an even byte offset, from its two bytes
float half_at(uint b) { return unpackHalf2x16(uint(w8[b]) | (uint(w8[b + 1u]) << 8)).x; }
#elif !defined(USE_STORAGE)
uint byte_at(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu; }
// an fp16 at an even byte offset (never across a word)
float half_at(uint b) { return unpackHalf2x16(w[b >> 2] >> ((b & 2u) * 8u)).x; }
// a bfloat16 at an even byte offset: the high 16 bits of a float32
float bf16_at(uint b) { return uintBitsToFloat((b & 2u) != 0u ? (w[b >> 2] & 0xFFFF0000u) : (w[b >> 2] << 16)); }
#endif
#if !defined(WT_F32) && !defined(WT_F16) && !defined(WT_BF16)
int sbyte_at(uint b) { return int(byte_at(b) << 24) >> 24; }
// a little-endian 32-bit field at any byte offset (Q5_0's and Q5_1's high bits)
uint u32_at(uint b) { return byte_at(b) | (byte_at(b + 1u) << 8) | (byte_at(b + 2u) << 16) | (byte_at(b + 3u) << 24); }
#endif

#if defined(WT_IQ4_NL) || defined(WT_IQ4_XS)
// the 16 non-linear levels of IQ4_NL and IQ4_XS, indexed by a nibble
const float KV_IQ4[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                   1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
#endif
#if defined(WT_Q4_K) || defined(WT_Q5_K)
// Q4_K's and Q5_K's 6-bit scale and min of sub-block j (0..7) from the 12 bytes at s:
// j < 4: scale = s[j] & 63, min = s[j+4] & 63; else the low 4 bits in s[j+4] (scale low
// nibble, min high nibble) and the high 2 bits in the top bits of s[j-4] (scale) and s[j] (min)
uvec2 scale_min_k4(uint s, uint j)
{
    if (j < 4u) return uvec2(byte_at(s + j) & 63u, byte_at(s + j + 4u) & 63u);
    const uint lo = byte_at(s + j + 4u);
    return uvec2((lo & 15u) | ((byte_at(s + j - 4u) >> 6) << 4), (lo >> 4) | ((byte_at(s + j) >> 6) << 4));
}
#endif

#if defined(WT_F32)
#define UNIT 1u
float unit_dot(uint rb, uint i, uint xb) { return uintBitsToFloat(w[(rb >> 2) + i]) * x[xb + i]; }
#elif defined(WT_F16)
#define UNIT 1u
float unit_dot(uint rb, uint i, uint xb) { return half_at(rb + 2u * i) * x[xb + i]; }
#elif defined(WT_BF16)
#define UNIT 1u
float unit_dot(uint rb, uint i, uint xb) { return bf16_at(rb + 2u * i) * x[xb + i]; }
#elif defined(WT_Q8_0)
#define UNIT 32u
// block: fp16 scale, 32 signed bytes (34 bytes)
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 34u, xi = xb + b * 32u;
    float s = 0.0;
    for (uint e = 0u; e < 32u; e++) s += float(sbyte_at(bb + 2u + e)) * x[xi + e];
    return half_at(bb) * s;
}
#elif defined(WT_Q4_0)
#define UNIT 32u
// block: fp16 scale, 16 bytes: element e < 16 in the low nibble of byte e, element
// e + 16 in its high nibble; value = nibble - 8 (18 bytes)
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 18u, xi = xb + b * 32u;
    float s = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(bb + 2u + e);
        s += float(int(q & 15u) - 8) * x[xi + e] + float(int(q >> 4) - 8) * x[xi + e + 16u];
    }
    return half_at(bb) * s;
}
#elif defined(WT_Q4_1)
#define UNIT 32u
// block: fp16 d, fp16 m, 16 bytes of nibbles as Q4_0's; value = d q + m (20 bytes).
// The q and the m parts are summed apart: d sum(q x) + m sum(x).
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 20u, xi = xb + b * 32u;
    float s = 0.0, sx = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(bb + 4u + e);
        const float x0 = x[xi + e], x1 = x[xi + e + 16u];
        s += float(q & 15u) * x0 + float(q >> 4) * x1;
        sx += x0 + x1;
    }
    return half_at(bb) * s + half_at(bb + 2u) * sx;
}
#elif defined(WT_Q5_0)
#define UNIT 32u
// block: fp16 d, 4 bytes qh (a little-endian word: bit e is element e's fifth bit), 16
// bytes of nibbles as Q4_0's; value = (nibble | fifth bit << 4) - 16 (22 bytes)
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 22u, xi = xb + b * 32u, qh = u32_at(bb + 2u);
    float s = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(bb + 6u + e);
        const int lo = int((q & 15u) | (((qh >> e) & 1u) << 4)) - 16;
        const int hi = int((q >> 4) | (((qh >> (e + 16u)) & 1u) << 4)) - 16;
        s += float(lo) * x[xi + e] + float(hi) * x[xi + e + 16u];
    }
    return half_at(bb) * s;
}
#elif defined(WT_Q5_1)
#define UNIT 32u
// block: fp16 d, fp16 m, 4 bytes qh, 16 bytes of nibbles (as Q5_0's, unsigned);
// value = d q + m (24 bytes); the q and m parts summed apart as Q4_1's
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 24u, xi = xb + b * 32u, qh = u32_at(bb + 4u);
    float s = 0.0, sx = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(bb + 8u + e);
        const float x0 = x[xi + e], x1 = x[xi + e + 16u];
        s += float((q & 15u) | (((qh >> e) & 1u) << 4)) * x0 + float((q >> 4) | (((qh >> (e + 16u)) & 1u) << 4)) * x1;
        sx += x0 + x1;
    }
    return half_at(bb) * s + half_at(bb + 2u) * sx;
}
#elif defined(WT_Q2_K)
#define UNIT 32u
// super-block of 256 (84 bytes): 16 scale bytes (one per 16 values: low nibble the scale,
// high nibble the min), 64 bytes of 2-bit values, fp16 d at 80, fp16 dmin at 82;
// value = d sc q - dmin m. Group g (0..7) of 32 values: q = (qs[32 (g / 4) + l] >>
// 2 (g % 4)) & 3 for l < 32, scale bytes 2g (l < 16) and 2g + 1. One thread per group.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 84u, g = sb & 7u, xi = xb + sb * 32u;
    const uint qs = bb + 16u + (g >> 2) * 32u, shift = 2u * (g & 3u);
    const uint sc0 = byte_at(bb + 2u * g), sc1 = byte_at(bb + 2u * g + 1u);
    float s0 = 0.0, s1 = 0.0, x0 = 0.0, x1 = 0.0;
    for (uint l = 0u; l < 16u; l++) {
        const float xa = x[xi + l], xc = x[xi + l + 16u];
        s0 += float((byte_at(qs + l) >> shift) & 3u) * xa;
        s1 += float((byte_at(qs + l + 16u) >> shift) & 3u) * xc;
        x0 += xa;
        x1 += xc;
    }
    const float d = half_at(bb + 80u), dmin = half_at(bb + 82u);
    return (d * float(sc0 & 15u) * s0 + d * float(sc1 & 15u) * s1) -
           (dmin * float(sc0 >> 4) * x0 + dmin * float(sc1 >> 4) * x1);
}
#elif defined(WT_Q3_K)
#define UNIT 32u
// super-block of 256 (110 bytes): 32 bytes hmask, 64 bytes of 2-bit values, 12 bytes of
// 6-bit scales (one per 16 values), fp16 d at 108; value = d (sc - 32) (q - 4 (1 - h)).
// Group g (0..7) of 32 values: q = (qs[32 (g / 4) + l] >> 2 (g % 4)) & 3, h = bit g of
// hmask[l], scales 2g (l < 16) and 2g + 1. Scale j: low 4 bits in byte j (j < 8) or the
// high nibble of byte j - 8, high 2 bits at bit 2 (j / 4) of byte 8 + j % 4.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 110u, g = sb & 7u, xi = xb + sb * 32u;
    const uint qs = bb + 32u + (g >> 2) * 32u, shift = 2u * (g & 3u);
    int sc[2];
    for (uint h = 0u; h < 2u; h++) {
        const uint j = 2u * g + h, sbytes = bb + 96u;
        const uint lo = j < 8u ? (byte_at(sbytes + j) & 15u) : (byte_at(sbytes + j - 8u) >> 4);
        const uint hi = (byte_at(sbytes + 8u + (j & 3u)) >> (2u * (j >> 2))) & 3u;
        sc[h] = int(lo | (hi << 4)) - 32;
    }
    float s0 = 0.0, s1 = 0.0;
    for (uint l = 0u; l < 16u; l++) {
        const int qa = int((byte_at(qs + l) >> shift) & 3u) - (((byte_at(bb + l) >> g) & 1u) != 0u ? 0 : 4);
        const int qc = int((byte_at(qs + l + 16u) >> shift) & 3u) - (((byte_at(bb + l + 16u) >> g) & 1u) != 0u ? 0 : 4);
        s0 += float(qa) * x[xi + l];
        s1 += float(qc) * x[xi + l + 16u];
    }
    const float d = half_at(bb + 108u);
    return d * float(sc[0]) * s0 + d * float(sc[1]) * s1;
}
#elif defined(WT_Q4_K)
#define UNIT 32u
// super-block of 256 (144 bytes): fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins
// for its 8 sub-blocks of 32, 128 bytes of nibbles: bytes 32j..32j+31 hold sub-block 2j
// in their low nibbles and 2j+1 in their high ones; value = d sc q - dmin m.
// One thread per sub-block.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 144u, j = sb & 7u, xi = xb + sb * 32u;
    const uvec2 sm = scale_min_k4(bb + 4u, j);
    const uint sc = sm.x, mn = sm.y;
    const uint qb = bb + 16u + (j >> 1) * 32u, shift = (j & 1u) * 4u;
    float s = 0.0, sx = 0.0;
    for (uint l = 0u; l < 32u; l++) {
        const float xv = x[xi + l];
        s += float((byte_at(qb + l) >> shift) & 15u) * xv;
        sx += xv;
    }
    return half_at(bb) * float(sc) * s - half_at(bb + 2u) * float(mn) * sx;
}
#elif defined(WT_Q5_K)
#define UNIT 32u
// super-block of 256 (176 bytes): fp16 d, fp16 dmin, 12 bytes of scales and mins as
// Q4_K's, 32 bytes qh, 128 bytes of nibbles as Q4_K's; sub-block j's fifth bit is bit j
// of qh[l]; value = d sc q - dmin m. One thread per sub-block.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 176u, j = sb & 7u, xi = xb + sb * 32u;
    const uvec2 sm = scale_min_k4(bb + 4u, j);
    const uint qb = bb + 48u + (j >> 1) * 32u, shift = (j & 1u) * 4u;
    float s = 0.0, sx = 0.0;
    for (uint l = 0u; l < 32u; l++) {
        const float xv = x[xi + l];
        s += float(((byte_at(qb + l) >> shift) & 15u) | (((byte_at(bb + 16u + l) >> j) & 1u) << 4)) * xv;
        sx += xv;
    }
    return half_at(bb) * float(sm.x) * s - half_at(bb + 2u) * float(sm.y) * sx;
}
#elif defined(WT_Q6_K)
#define UNIT 32u
// super-block of 256 (210 bytes): 128 bytes of low 4 bits (ql), 64 of high 2 bits (qh),
// 16 signed 8-bit scales (one per 16 values), fp16 d at byte 208; value = d sc (q - 32).
// Half n (128 values) takes ql[64n..], qh[32n..], scales[8n..]; its 4 groups of 32:
// g 0: ql[l] low, qh bits 0-1; g 1: ql[l+32] low, bits 2-3; g 2: ql[l] high, bits 4-5;
// g 3: ql[l+32] high, bits 6-7. One thread per group of 32.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 210u, n = (sb >> 2) & 1u, g = sb & 3u, xi = xb + sb * 32u;
    const uint ql = bb + 64u * n + (g & 1u) * 32u, qh = bb + 128u + 32u * n, sc = bb + 192u + 8u * n + 2u * g;
    const uint lshift = (g >> 1) * 4u, hshift = 2u * g;
    float s0 = 0.0, s1 = 0.0;
    for (uint l = 0u; l < 32u; l++) {
        const int q = int(((byte_at(ql + l) >> lshift) & 15u) | (((byte_at(qh + l) >> hshift) & 3u) << 4)) - 32;
        if (l < 16u) s0 += float(q) * x[xi + l];
        else s1 += float(q) * x[xi + l];
    }
    return half_at(bb + 208u) * (float(sbyte_at(sc)) * s0 + float(sbyte_at(sc + 1u)) * s1);
}
#elif defined(WT_IQ4_NL)
#define UNIT 32u
// block: fp16 d, 16 bytes of nibbles as Q4_0's, each an index into KV_IQ4 (18 bytes)
float unit_dot(uint rb, uint b, uint xb)
{
    const uint bb = rb + b * 18u, xi = xb + b * 32u;
    float s = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(bb + 2u + e);
        s += KV_IQ4[q & 15u] * x[xi + e] + KV_IQ4[q >> 4] * x[xi + e + 16u];
    }
    return half_at(bb) * s;
}
#elif defined(WT_IQ4_XS)
#define UNIT 32u
// super-block of 256 (136 bytes): fp16 d, 16-bit scales_h (2 high bits of sub-block g's
// scale at bit 2g), 4 bytes scales_l (low 4 bits of g's in nibble g % 2 of byte g / 2),
// 128 bytes of nibbles: bytes 16g..16g+15 hold sub-block g's values l (low nibble) and
// l + 16 (high), indices into KV_IQ4; value = d (scale - 32) KV_IQ4[q]. One thread per
// sub-block.
float unit_dot(uint rb, uint sb, uint xb)
{
    const uint bb = rb + (sb >> 3) * 136u, g = sb & 7u, xi = xb + sb * 32u;
    const uint scales_h = byte_at(bb + 2u) | (byte_at(bb + 3u) << 8);
    const uint ls = ((byte_at(bb + 4u + (g >> 1)) >> (4u * (g & 1u))) & 15u) | (((scales_h >> (2u * g)) & 3u) << 4);
    const uint qb = bb + 8u + 16u * g;
    float s = 0.0;
    for (uint e = 0u; e < 16u; e++) {
        const uint q = byte_at(qb + e);
        s += KV_IQ4[q & 15u] * x[xi + e] + KV_IQ4[q >> 4] * x[xi + e + 16u];
    }
    return half_at(bb) * float(int(ls) - 32) * s;
}
#else
#error "no weight type: -DWT_<TYPE> for one of the types listed at the top"
#endif

// y for this workgroup's ROWS rows and COLS activation rows (weights read once for all of
// them): each column's sum runs over the units (elements, or blocks of 32) in the order one
// column alone would take, so a product's bits do not depend on the other columns
void main()
{
#if defined(USE_SUBGROUP)
    const uint tid = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
    const uint tid = gl_LocalInvocationID.x;
#endif
    const uint t = tid % LANES, row = gl_WorkGroupID.x * ROWS + tid / LANES;
    const uint c0 = gl_WorkGroupID.y * COLS, nc = min(COLS, p.n_cols - c0);
    const bool valid = row < p.n_rows;   // a last group's spare rows join the barriers only
    const uint rb = p.w_base + (valid ? row : 0u) * p.row_bytes;
    float acc[COLS];
    for (uint c = 0u; c < COLS; c++) acc[c] = 0.0;
    if (valid)
        for (uint u = t; u < p.k / UNIT; u += LANES)
            for (uint c = 0u; c < nc; c++) acc[c] += unit_dot(rb, u, (c0 + c) * p.x_stride);
#if defined(USE_SUBGROUP)
    for (uint c = 0u; c < nc; c++)
        for (uint s = LANES / 2u; s > 0u; s >>= 1u) acc[c] += subgroupShuffleXor(acc[c], s);
    if (t == 0u && valid)
        for (uint c = 0u; c < nc; c++) y[p.y_base + (c0 + c) * p.y_stride + row] = acc[c];
#else
    for (uint c = 0u; c < nc; c++) part[c * LOCAL + tid] = acc[c];
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            for (uint c = 0u; c < nc; c++) part[c * LOCAL + tid] += part[c * LOCAL + tid + s];
        barrier();
    }
    if (t == 0u && valid)
        for (uint c = 0u; c < nc; c++) y[p.y_base + (c0 + c) * p.y_stride + row] = part[c * LOCAL + tid];
#endif
}
