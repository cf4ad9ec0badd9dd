// The KV cache, one op per build. The cache is a buffer of bytes (read as 32-bit words):
// KV head h of sequence s at position p holds one row of head_dim values at byte
//   base + s * seq_stride + h * head_stride + p * row_bytes
// in the part's type: F16 (ggml's fp16, 2 bytes a value), Q8_0 (blocks of 32: an f16 scale d
// and 32 int8 q, value q d; 34 bytes) or Q4_0 (blocks of 32: an f16 scale d and 16 bytes,
// element i < 16 in the low nibble of byte i, element i + 16 in its high nibble, value
// (nibble - 8) d; 18 bytes). A rotated part (block types) holds each 64-value chunk of the
// row times H/8, the 64x64 Sylvester Hadamard matrix (H[i][k] = (-1)^popcount(i & k)),
// orthonormal and its own inverse, as the CPU backend stores its quantized caches.
// Every token's position and sequence come from a table, tok[2j] and tok[2j + 1].
//   OP_STORE  rows of n_kv heads of head_dim floats (token j's at j * ld) into the cache at
//             their token's (sequence, position), quantized as ggml's reference quantizer
//             does (Q8_0: d = max|x| / 127, q = round(x / d), half away from zero; Q4_0: d =
//             (the value of largest magnitude) / -8, nibble = min(15, trunc(x / d + 8.5)); d
//             stored as f16). One thread per pair of values (F16) or block (Q8_0/Q4_0).
//   OP_ATTN   causal attention of n tokens over the cache: query head h of token j (q at
//             j * ld + h * head_dim) against KV head h / (n_head / n_kv) of the token's
//             sequence, positions 0 .. its position, softmax(scale q.k) v into out (token j's
//             at j * ldo + h * head_dim). Keys of a block type meet the query rounded to
//             Q8_0 (in the rotated space when the keys are rotated), as the CPU backend's
//             and ggml's attention does; a rotated V part's weighted sum is rotated back.
//             One workgroup per (token, head), an online softmax over chunks of LOCAL
//             positions (below).
// A token whose position or sequence is outside the cache (n_pos, n_seq) is not stored, and
// its attention output is NaN: the caller checks the table, and an error shows.
// OP_ATTN has a build for devices with subgroup arithmetic (USE_SUBGROUP, chosen at run time
// by src/vulkan/vk.c): a chunk's maximum is each subgroup's (subgroupMax) and then theirs,
// instead of a tree over shared memory; a maximum is exact in any order, so the results are
// the same bit for bit.
#version 450
#if defined(USE_SUBGROUP)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define LOCAL 64
#define MAX_HEAD 256
#define T_F16 1u
#define T_Q4_0 2u
#define T_Q8_0 8u
layout(local_size_x = LOCAL) in;

layout(push_constant) uniform Params {
    uint n;             // tokens
    uint n_head;        // OP_ATTN: query heads
    uint n_kv;          // KV heads
    uint head_dim;      // even (F16) or a multiple of 32, at most MAX_HEAD
    uint ld;            // floats between input (OP_STORE) or query (OP_ATTN) rows
    uint ldo;           // OP_ATTN: floats between output rows
    uint n_pos;         // positions each (sequence, head) holds
    uint n_seq;         // sequences
    uint k_base;        // bytes: the part stored (OP_STORE), this layer's K (OP_ATTN)
    uint k_head;        // its head stride, bytes
    uint k_seq;         // its sequence stride, bytes
    uint v_base;        // OP_ATTN: this layer's V, and its strides
    uint v_head;
    uint v_seq;
    uint types;         // type of K (OP_STORE: of the part) | type of V << 8 | rotated K << 16 | rotated V << 17
    float scale;        // OP_ATTN: score scale
} p;

uint row_bytes(uint type) { return type == T_F16 ? 2u * p.head_dim : type == T_Q8_0 ? p.head_dim / 32u * 34u : p.head_dim / 32u * 18u; }

// x rounded half away from zero (C's roundf)
float round_away(float x) { return sign(x) * floor(abs(x) + 0.5); }

// f16 rounding of a float, and back
float f16_round(float x) { return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x; }

// the entry of H (unnormalized) at (i, k) of a 64 chunk
float hsign(uint i, uint k) { return (bitCount(i & k) & 1) != 0 ? -1.0 : 1.0; }

#if defined(OP_STORE)
layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };
layout(std430, binding = 2) readonly buffer Tok { uint tok[]; };

// bytes [o, o + nb) of the cache (o even): words wholly inside are stored, the two at the ends
// (shared with the neighbouring block of another thread) changed by atomics on our bytes only
void put_bytes(uint o, uint by[34], uint nb)
{
    for (uint w = o >> 2u; w <= (o + nb - 1u) >> 2u; w++) {
        uint val = 0u, mask = 0u;
        for (uint k = 0u; k < 4u; k++) {
            const uint b = w * 4u + k;
            if (b >= o && b < o + nb) {
                val |= by[b - o] << (8u * k);
                mask |= 0xffu << (8u * k);
            }
        }
        if (mask == 0xffffffffu) {
            cache[w] = val;
        } else {
            atomicAnd(cache[w], ~mask);
            atomicOr(cache[w], val);
        }
    }
}

void main()
{
    const uint type = p.types & 0xffu;
    const bool rot = (p.types & 0x10000u) != 0u;
    const uint block = type == T_F16 ? 2u : 32u, units = p.head_dim / block;
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
    if (id >= p.n * p.n_kv * units) return;
    const uint u = id % units, h = (id / units) % p.n_kv, j = id / (units * p.n_kv);
    const uint pos = tok[2u * j], seq = tok[2u * j + 1u];
    if (pos >= p.n_pos || seq >= p.n_seq) return;
    const uint row = p.k_base + seq * p.k_seq + h * p.k_head + pos * row_bytes(type);
    const uint s = j * p.ld + h * p.head_dim + u * block;
    if (type == T_F16) {
        cache[(row + 4u * u) >> 2u] = packHalf2x16(vec2(src[s], src[s + 1u]));
        return;
    }
    float x[32];
    if (rot) {   // this block's 32 values of (H/8) times its 64-value chunk
        const uint c0 = j * p.ld + h * p.head_dim + ((u * 32u) & ~63u), off = (u * 32u) & 63u;
        for (uint i = 0u; i < 32u; i++) {
            float acc = 0.0;
            for (uint k = 0u; k < 64u; k++) acc += hsign(off + i, k) * src[c0 + k];
            x[i] = acc * 0.125;
        }
    } else {
        for (uint i = 0u; i < 32u; i++) x[i] = src[s + i];
    }
    uint by[34];
    for (uint i = 0u; i < 34u; i++) by[i] = 0u;
    float d;
    if (type == T_Q8_0) {
        float amax = 0.0;
        for (uint i = 0u; i < 32u; i++) amax = max(amax, abs(x[i]));
        d = amax / 127.0;
        const float id_ = d != 0.0 ? 1.0 / d : 0.0;
        for (uint i = 0u; i < 32u; i++) by[2u + i] = uint(int(round_away(x[i] * id_))) & 0xffu;
    } else {
        float amax = 0.0, mx = 0.0;
        for (uint i = 0u; i < 32u; i++)
            if (amax < abs(x[i])) {
                amax = abs(x[i]);
                mx = x[i];
            }
        d = mx / -8.0;
        const float id_ = d != 0.0 ? 1.0 / d : 0.0;
        for (uint i = 0u; i < 16u; i++) {
            const uint q0 = min(15u, uint(x[i] * id_ + 8.5)), q1 = min(15u, uint(x[i + 16u] * id_ + 8.5));
            by[2u + i] = q0 | (q1 << 4u);
        }
    }
    const uint dh = packHalf2x16(vec2(d, 0.0)) & 0xffffu;
    by[0] = dh & 0xffu;
    by[1] = dh >> 8u;
    put_bytes(row + u * (type == T_Q8_0 ? 34u : 18u), by, type == T_Q8_0 ? 34u : 18u);
}
#elif defined(OP_ATTN)
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer Cache { uint cache[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(std430, binding = 3) readonly buffer Tok { uint tok[]; };

shared float sc[LOCAL];      // the scores of the positions of one chunk
shared float red[LOCAL];     // their maximum, by a tree (or each subgroup's)
shared float qs[MAX_HEAD];   // the query as the keys meet it
shared float tmp[MAX_HEAD];  // a rotation's input

uint byte_at(uint b) { return (cache[b >> 2u] >> (8u * (b & 3u))) & 0xffu; }
float f16_at(uint b) { return unpackHalf2x16((cache[b >> 2u] >> (8u * (b & 3u))) & 0xffffu).x; }   // b even

// value d of the row at byte r
float value_at(uint type, uint r, uint d)
{
    if (type == T_F16) return f16_at(r + 2u * d);
    const uint i = d & 31u;
    if (type == T_Q8_0) {
        const uint o = r + (d >> 5u) * 34u;
        return float(int(byte_at(o + 2u + i) << 24u) >> 24) * f16_at(o);
    }
    const uint o = r + (d >> 5u) * 18u, b = byte_at(o + 2u + (i & 15u));
    return float(int(i < 16u ? b & 15u : b >> 4u) - 8) * f16_at(o);
}

// Positions go in chunks of LOCAL: each thread scores one position of the chunk (a dot
// product over head_dim), a tree finds the chunk's maximum, and then every thread, for the
// output dimensions it owns (t, t + LOCAL, ...), rescales its sums to the new maximum and
// adds the chunk's weighted values. About 8 barriers a chunk.
void main()
{
    const uint j = gl_WorkGroupID.x / p.n_head, h = gl_WorkGroupID.x % p.n_head, t = gl_LocalInvocationID.x;
    const uint hk = h / (p.n_head / p.n_kv), hd = p.head_dim, qb = j * p.ld + h * hd;
    const uint tk = p.types & 0xffu, tv = (p.types >> 8u) & 0xffu;
    const bool rot_k = (p.types & 0x10000u) != 0u, rot_v = (p.types & 0x20000u) != 0u;
    const uint last = tok[2u * j], seq = tok[2u * j + 1u];
    if (last >= p.n_pos || seq >= p.n_seq) {   // the whole workgroup: no barrier is skipped by some
        for (uint d = t; d < hd; d += LOCAL) o[j * p.ldo + h * hd + d] = uintBitsToFloat(0x7fc00000u);
        return;
    }
    const uint kb = p.k_base + seq * p.k_seq + hk * p.k_head, vb = p.v_base + seq * p.v_seq + hk * p.v_head;
    const uint rk = row_bytes(tk), rv = row_bytes(tv);
    for (uint d = t; d < hd; d += LOCAL) qs[d] = q[qb + d];
    barrier();
    if (tk != T_F16) {
        if (rot_k) {
            for (uint d = t; d < hd; d += LOCAL) {
                float acc = 0.0;
                for (uint k = 0u; k < 64u; k++) acc += hsign(d & 63u, k) * qs[(d & ~63u) + k];
                tmp[d] = acc * 0.125;
            }
            barrier();
            for (uint d = t; d < hd; d += LOCAL) qs[d] = tmp[d];
            barrier();
        }
        if (t < hd / 32u) {   // block t of the query to Q8_0 and back
            float amax = 0.0;
            for (uint i = 0u; i < 32u; i++) amax = max(amax, abs(qs[32u * t + i]));
            const float dq = amax / 127.0, id_ = dq != 0.0 ? 1.0 / dq : 0.0, dh = f16_round(dq);
            for (uint i = 0u; i < 32u; i++) qs[32u * t + i] = round_away(qs[32u * t + i] * id_) * dh;
        }
        barrier();
    }
    float acc[MAX_HEAD / LOCAL];
    for (uint i = 0u; i < MAX_HEAD / LOCAL; i++) acc[i] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    for (uint base = 0u; base <= last; base += LOCAL) {
        const uint pos = base + t;
        float s = -1.0 / 0.0;
        if (pos <= last) {
            s = 0.0;
            for (uint d = 0u; d < hd; d++) s += qs[d] * value_at(tk, kb + pos * rk, d);
            s *= p.scale;
        }
        sc[t] = s;
#if defined(USE_SUBGROUP)
        const float sm = subgroupMax(s);
        if (subgroupElect()) red[gl_SubgroupID] = sm;
        barrier();
        float cm = red[0];
        for (uint i = 1u; i < gl_NumSubgroups; i++) cm = max(cm, red[i]);
#else
        red[t] = s;
        barrier();
        for (uint w = LOCAL / 2u; w > 0u; w >>= 1u) {
            if (t < w) red[t] = max(red[t], red[t + w]);
            barrier();
        }
        const float cm = red[0];
#endif
        const float mn = max(m, cm);   // cm is finite: the chunk's first position is <= last
        const float f = exp(m - mn);       // 0 on the first chunk (m = -inf)
        l *= f;
        for (uint i = 0u; i * LOCAL + t < hd; i++) acc[i] *= f;
        const uint cnt = min(LOCAL, last + 1u - base);
        for (uint c = 0u; c < cnt; c++) {
            const float wgt = exp(sc[c] - mn);
            l += wgt;
            for (uint i = 0u; i * LOCAL + t < hd; i++) acc[i] += wgt * value_at(tv, vb + (base + c) * rv, i * LOCAL + t);
        }
        m = mn;
        barrier();   // sc and red are rewritten by the next chunk
    }
    if (rot_v) {   // the sum of rotated rows, rotated back
        for (uint i = 0u; i * LOCAL + t < hd; i++) tmp[i * LOCAL + t] = acc[i] / l;
        barrier();
        for (uint d = t; d < hd; d += LOCAL) {
            float r = 0.0;
            for (uint k = 0u; k < 64u; k++) r += hsign(d & 63u, k) * tmp[(d & ~63u) + k];
            o[j * p.ldo + h * hd + d] = r * 0.125;
        }
        return;
    }
    for (uint i = 0u; i * LOCAL + t < hd; i++) o[j * p.ldo + h * hd + i * LOCAL + t] = acc[i] / l;
}
#else
#error "no op: -DOP_STORE or -DOP_ATTN"
#endif
