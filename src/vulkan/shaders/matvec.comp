// Matrix times activation rows: y[col][row] = sum_i W[row][i] * x[col][i], in float32.
// A workgroup takes ROWS output rows of one activation row: LANES = LOCAL / ROWS threads per
// row take its blocks (or elements) in turn, and a tree in shared memory adds their sums. The weight type is chosen
// at build time (-DWT_F32, WT_F16, WT_Q8_0, WT_Q4_0, WT_Q4_K, WT_Q6_K); its rows are ggml's bytes as stored
// in GGUF, read through 32-bit words (so neither 8- nor 16-bit storage is needed, and
// MoltenVK takes the shader as it is).
#version 450

#define LOCAL 64
#define ROWS 8
#define LANES (LOCAL / ROWS)
layout(local_size_x = LOCAL) in;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
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
} p;

shared float part[LOCAL];

uint byte_at(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu; }
int sbyte_at(uint b) { return int(byte_at(b) << 24) >> 24; }
// an fp16 at an even byte offset (never across a word)
float half_at(uint b) { return unpackHalf2x16(w[b >> 2] >> ((b & 2u) * 8u)).x; }

void main()
{
    const uint tid = gl_LocalInvocationID.x, t = tid % LANES, row = gl_WorkGroupID.x * ROWS + tid / LANES;
    const uint col = gl_WorkGroupID.y;
    const bool valid = row < p.n_rows;   // a last group's spare rows join the barriers only
    const uint rb = p.w_base + (valid ? row : 0u) * p.row_bytes, xb = col * p.x_stride;
    float acc = 0.0;
    if (valid) {
#if defined(WT_F32)
    for (uint i = t; i < p.k; i += LANES) acc += uintBitsToFloat(w[(rb >> 2) + i]) * x[xb + i];
#elif defined(WT_F16)
    for (uint i = t; i < p.k; i += LANES) acc += half_at(rb + 2u * i) * x[xb + i];
#elif defined(WT_Q8_0)
    // block: fp16 scale, 32 signed bytes (34 bytes)
    for (uint b = t; b < p.k / 32u; b += LANES) {
        const uint bb = rb + b * 34u, xi = xb + b * 32u;
        float s = 0.0;
        for (uint e = 0u; e < 32u; e++) s += float(sbyte_at(bb + 2u + e)) * x[xi + e];
        acc += half_at(bb) * s;
    }
#elif defined(WT_Q4_0)
    // block: fp16 scale, 16 bytes: element e < 16 in the low nibble of byte e, element
    // e + 16 in its high nibble; value = nibble - 8 (18 bytes)
    for (uint b = t; b < p.k / 32u; b += LANES) {
        const uint bb = rb + b * 18u, xi = xb + b * 32u;
        float s = 0.0;
        for (uint e = 0u; e < 16u; e++) {
            const uint q = byte_at(bb + 2u + e);
            s += float(int(q & 15u) - 8) * x[xi + e] + float(int(q >> 4) - 8) * x[xi + e + 16u];
        }
        acc += half_at(bb) * s;
    }
#elif defined(WT_Q4_K)
    // super-block of 256 (144 bytes): fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins
    // for its 8 sub-blocks of 32, 128 bytes of nibbles: bytes 32j..32j+31 hold sub-block 2j
    // in their low nibbles and 2j+1 in their high ones; value = d sc q - dmin m.
    // One thread per sub-block.
    for (uint sb = t; sb < p.k / 32u; sb += LANES) {
        const uint bb = rb + (sb >> 3) * 144u, j = sb & 7u, xi = xb + sb * 32u;
        uint sc, mn;
        if (j < 4u) {
            sc = byte_at(bb + 4u + j) & 63u;
            mn = byte_at(bb + 8u + j) & 63u;
        } else {
            sc = (byte_at(bb + 8u + j) & 15u) | ((byte_at(bb + j) >> 6) << 4);
            mn = (byte_at(bb + 8u + j) >> 4) | ((byte_at(bb + 4u + j) >> 6) << 4);
        }
        const uint qb = bb + 16u + (j >> 1) * 32u, shift = (j & 1u) * 4u;
        float s = 0.0, sx = 0.0;
        for (uint l = 0u; l < 32u; l++) {
            const float xv = x[xi + l];
            s += float((byte_at(qb + l) >> shift) & 15u) * xv;
            sx += xv;
        }
        acc += half_at(bb) * float(sc) * s - half_at(bb + 2u) * float(mn) * sx;
    }
#elif defined(WT_Q6_K)
    // super-block of 256 (210 bytes): 128 bytes of low 4 bits (ql), 64 of high 2 bits (qh),
    // 16 signed 8-bit scales (one per 16 values), fp16 d at byte 208; value = d sc (q - 32).
    // Half n (128 values) takes ql[64n..], qh[32n..], scales[8n..]; its 4 groups of 32:
    // g 0: ql[l] low, qh bits 0-1; g 1: ql[l+32] low, bits 2-3; g 2: ql[l] high, bits 4-5;
    // g 3: ql[l+32] high, bits 6-7. One thread per group of 32.
    for (uint sb = t; sb < p.k / 32u; sb += LANES) {
        const uint bb = rb + (sb >> 3) * 210u, n = (sb >> 2) & 1u, g = sb & 3u, xi = xb + sb * 32u;
        const uint ql = bb + 64u * n + (g & 1u) * 32u, qh = bb + 128u + 32u * n, sc = bb + 192u + 8u * n + 2u * g;
        const uint lshift = (g >> 1) * 4u, hshift = 2u * g;
        float s0 = 0.0, s1 = 0.0;
        for (uint l = 0u; l < 32u; l++) {
            const int q = int(((byte_at(ql + l) >> lshift) & 15u) | (((byte_at(qh + l) >> hshift) & 3u) << 4)) - 32;
            if (l < 16u) s0 += float(q) * x[xi + l];
            else s1 += float(q) * x[xi + l];
        }
        acc += half_at(bb + 208u) * (float(sbyte_at(sc)) * s0 + float(sbyte_at(sc + 1u)) * s1);
    }
#else
#error "no weight type: -DWT_F32, -DWT_F16, -DWT_Q8_0, -DWT_Q4_0, -DWT_Q4_K or -DWT_Q6_K"
#endif
    }
    part[tid] = acc;
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1u) {
        if (t < s) part[tid] += part[tid + s];
        barrier();
    }
    if (t == 0u && valid) y[p.y_base + col * p.y_stride + row] = part[tid];
}
