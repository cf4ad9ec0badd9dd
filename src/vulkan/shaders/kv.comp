// The KV cache in f16 (ggml's fp16, two to a 32-bit word), one op per build:
//   OP_STORE  rows of n_kv heads of head_dim floats (token j's at j * ld) into the cache:
//             head h of position pos0 + j at half index k_base + h * head_stride +
//             (pos0 + j) * head_dim. One thread per pair of halves.
//   OP_ATTN   causal attention of n tokens at positions pos0 .. pos0 + n - 1 over the cache:
//             query head h of token j (q at j * ld + h * head_dim) against KV head
//             h / (n_head / n_kv), positions 0 .. pos0 + j, softmax(scale q.k) v into out
//             (token j's at j * ldo + h * head_dim). One workgroup per (token, head), an
//             online softmax over chunks of LOCAL positions (below).
#version 450

#define LOCAL 64
#define MAX_HEAD 256
layout(local_size_x = LOCAL) in;

layout(push_constant) uniform Params {
    uint n;            // tokens
    uint n_head;       // OP_ATTN: query heads
    uint n_kv;         // KV heads
    uint head_dim;     // even, at most MAX_HEAD
    uint ld;           // floats between input (OP_STORE) or query (OP_ATTN) rows
    uint pos0;
    uint k_base;       // half index of the rows stored (OP_STORE), of this layer's K (OP_ATTN)
    uint v_base;       // OP_ATTN: half index of this layer's V
    uint head_stride;  // halves between one KV head's rows and the next's
    uint ldo;          // OP_ATTN: floats between output rows
    float scale;       // OP_ATTN: score scale
} p;

#if defined(OP_STORE)
layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };

void main()
{
    const uint pairs = p.head_dim / 2u;
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
    if (id >= p.n * p.n_kv * pairs) return;
    const uint i = id % pairs, h = (id / pairs) % p.n_kv, j = id / (pairs * p.n_kv);
    const uint s = j * p.ld + h * p.head_dim + 2u * i;
    const uint dst = p.k_base + h * p.head_stride + (p.pos0 + j) * p.head_dim + 2u * i;
    cache[dst >> 1] = packHalf2x16(vec2(src[s], src[s + 1u]));
}
#elif defined(OP_ATTN)
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer Cache { uint cache[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };

shared float sc[LOCAL];    // the scores of the positions of one chunk
shared float red[LOCAL];   // their maximum, by a tree

float half_at(uint i)
{
    const vec2 v = unpackHalf2x16(cache[i >> 1]);
    return (i & 1u) == 0u ? v.x : v.y;
}

// Positions go in chunks of LOCAL: each thread scores one position of the chunk (a dot
// product over head_dim), a tree finds the chunk's maximum, and then every thread, for the
// output dimensions it owns (t, t + LOCAL, ...), rescales its sums to the new maximum and
// adds the chunk's weighted values. About 8 barriers a chunk.
void main()
{
    const uint j = gl_WorkGroupID.x / p.n_head, h = gl_WorkGroupID.x % p.n_head, t = gl_LocalInvocationID.x;
    const uint hk = h / (p.n_head / p.n_kv), hd = p.head_dim, qb = j * p.ld + h * hd;
    const uint kb = p.k_base + hk * p.head_stride, vb = p.v_base + hk * p.head_stride, last = p.pos0 + j;
    float acc[MAX_HEAD / LOCAL];
    for (uint i = 0u; i < MAX_HEAD / LOCAL; i++) acc[i] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    for (uint base = 0u; base <= last; base += LOCAL) {
        const uint pos = base + t;
        float s = -1.0 / 0.0;
        if (pos <= last) {
            s = 0.0;
            for (uint d = 0u; d < hd; d++) s += q[qb + d] * half_at(kb + pos * hd + d);
            s *= p.scale;
        }
        sc[t] = s;
        red[t] = s;
        barrier();
        for (uint w = LOCAL / 2u; w > 0u; w >>= 1u) {
            if (t < w) red[t] = max(red[t], red[t + w]);
            barrier();
        }
        const float mn = max(m, red[0]);   // red[0] is finite: the chunk's first position is <= last
        const float f = exp(m - mn);       // 0 on the first chunk (m = -inf)
        l *= f;
        for (uint i = 0u; i * LOCAL + t < hd; i++) acc[i] *= f;
        const uint cnt = min(LOCAL, last + 1u - base);
        for (uint c = 0u; c < cnt; c++) {
            const float wgt = exp(sc[c] - mn);
            l += wgt;
            for (uint i = 0u; i * LOCAL + t < hd; i++) acc[i] += wgt * half_at(vb + (base + c) * hd + i * LOCAL + t);
        }
        m = mn;
        barrier();   // sc and red are rewritten by the next chunk
    }
    for (uint i = 0u; i * LOCAL + t < hd; i++) o[j * p.ldo + h * hd + i * LOCAL + t] = acc[i] / l;
}
#else
#error "no op: -DOP_STORE or -DOP_ATTN"
#endif
