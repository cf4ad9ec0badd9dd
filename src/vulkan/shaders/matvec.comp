// Matrix times activation rows: y[col][row] = sum_i W[row][i] * x[col][i], in float32.
// One workgroup per (output row, activation row); its LOCAL threads take the row's
// blocks in turn and a tree in shared memory adds their sums. The weight type is chosen
// at build time (-DWT_F32, WT_F16, WT_Q8_0, WT_Q4_0); its rows are ggml's bytes as stored
// in GGUF, read through 32-bit words (so neither 8- nor 16-bit storage is needed, and
// MoltenVK takes the shader as it is).
#version 450

#define LOCAL 64
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
} p;

shared float part[LOCAL];

uint byte_at(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu; }
int sbyte_at(uint b) { return int(byte_at(b) << 24) >> 24; }
// an fp16 at an even byte offset (never across a word)
float half_at(uint b) { return unpackHalf2x16(w[b >> 2] >> ((b & 2u) * 8u)).x; }

void main()
{
    const uint row = gl_WorkGroupID.x, col = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    const uint rb = p.w_base + row * p.row_bytes, xb = col * p.x_stride;
    float acc = 0.0;
#if defined(WT_F32)
    for (uint i = t; i < p.k; i += LOCAL) acc += uintBitsToFloat(w[(rb >> 2) + i]) * x[xb + i];
#elif defined(WT_F16)
    for (uint i = t; i < p.k; i += LOCAL) acc += half_at(rb + 2u * i) * x[xb + i];
#elif defined(WT_Q8_0)
    // block: fp16 scale, 32 signed bytes (34 bytes)
    for (uint b = t; b < p.k / 32u; b += LOCAL) {
        const uint bb = rb + b * 34u, xi = xb + b * 32u;
        float s = 0.0;
        for (uint e = 0u; e < 32u; e++) s += float(sbyte_at(bb + 2u + e)) * x[xi + e];
        acc += half_at(bb) * s;
    }
#elif defined(WT_Q4_0)
    // block: fp16 scale, 16 bytes: element e < 16 in the low nibble of byte e, element
    // e + 16 in its high nibble; value = nibble - 8 (18 bytes)
    for (uint b = t; b < p.k / 32u; b += LOCAL) {
        const uint bb = rb + b * 18u, xi = xb + b * 32u;
        float s = 0.0;
        for (uint e = 0u; e < 16u; e++) {
            const uint q = byte_at(bb + 2u + e);
            s += float(int(q & 15u) - 8) * x[xi + e] + float(int(q >> 4) - 8) * x[xi + e + 16u];
        }
        acc += half_at(bb) * s;
    }
#else
#error "no weight type: -DWT_F32, -DWT_F16, -DWT_Q8_0 or -DWT_Q4_0"
#endif
    part[t] = acc;
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1u) {
        if (t < s) part[t] += part[t + s];
        barrier();
    }
    if (t == 0u) y[p.y_base + col * p.y_stride + row] = part[0];
}
