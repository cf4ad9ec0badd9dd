// The KV cache in f16 (ggml's fp16, two to a 32-bit word), one op per build:
//   OP_STORE  rows of n_kv heads of head_dim floats (token j's at j * ld) into the cache:
//             head h of position pos0 + j at half index k_base + h * head_stride +
//             (pos0 + j) * head_dim. One thread per pair of halves.
//   OP_ATTN   causal attention of n tokens at positions pos0 .. pos0 + n - 1 over the cache:
//             query head h of token j (q at j * ld + h * head_dim) against KV head
//             h / (n_head / n_kv), positions 0 .. pos0 + j, softmax(scale q.k) v into out
//             (token j's at j * ldo + h * head_dim). One workgroup per (token, head): each
//             thread runs an online softmax over every LOCAL-th position, then the threads'
//             maxima, sums and accumulators are merged through shared memory.
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

shared float red[LOCAL];

float half_at(uint i)
{
    const vec2 v = unpackHalf2x16(cache[i >> 1]);
    return (i & 1u) == 0u ? v.x : v.y;
}

void main()
{
    const uint j = gl_WorkGroupID.x / p.n_head, h = gl_WorkGroupID.x % p.n_head, t = gl_LocalInvocationID.x;
    const uint hk = h / (p.n_head / p.n_kv), hd = p.head_dim, qb = j * p.ld + h * hd;
    const uint kb = p.k_base + hk * p.head_stride, vb = p.v_base + hk * p.head_stride;
    float acc[MAX_HEAD];
    for (uint d = 0u; d < hd; d++) acc[d] = 0.0;
    float m = -1.0 / 0.0, l = 0.0;
    for (uint pos = t; pos <= p.pos0 + j; pos += LOCAL) {
        float s = 0.0;
        for (uint d = 0u; d < hd; d++) s += q[qb + d] * half_at(kb + pos * hd + d);
        s *= p.scale;
        if (s > m) {   // a new maximum: what was summed under the old one shrinks
            const float f = exp(m - s);
            for (uint d = 0u; d < hd; d++) acc[d] *= f;
            l *= f;
            m = s;
        }
        const float w = exp(s - m);
        l += w;
        for (uint d = 0u; d < hd; d++) acc[d] += w * half_at(vb + pos * hd + d);
    }
    // the workgroup's maximum, then every thread's sums brought to it
    red[t] = m;
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1u) {
        if (t < s) red[t] = max(red[t], red[t + s]);
        barrier();
    }
    const float mx = red[0];
    barrier();
    const float f = l > 0.0 ? exp(m - mx) : 0.0;   // a thread that saw no position has l = 0
    red[t] = l * f;
    barrier();
    for (uint s = LOCAL / 2u; s > 0u; s >>= 1u) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    const float total = red[0];
    barrier();
    for (uint d = 0u; d < hd; d++) {
        red[t] = acc[d] * f;
        barrier();
        for (uint s = LOCAL / 2u; s > 0u; s >>= 1u) {
            if (t < s) red[t] += red[t + s];
            barrier();
        }
        if (t == 0u) o[j * p.ldo + h * hd + d] = red[0] / total;
        barrier();
    }
}
#else
#error "no op: -DOP_STORE or -DOP_ATTN"
#endif
