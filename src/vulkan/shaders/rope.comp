// RoPE in place: rows of n_head heads of head_dim floats (token j's row at j * ld), the
// first n_rot dimensions of each head rotated by the angles of token j's position (tok[2j]
// of the token table, qfit/vulkan.h), read from a table of cos then sin (n_pos x n_rot/2
// each, as the CPU context builds it); a position past the table makes the pair NaN.
// NEOX rotates (x[i], x[i + n_rot/2]); normal rotates (x[2i], x[2i+1]). One thread per
// (token, head, pair).
#version 450

#define LOCAL 64
layout(local_size_x = LOCAL) in;

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer T { float tab[]; };
layout(std430, binding = 2) readonly buffer Tok { uint tok[]; };

layout(push_constant) uniform Params {
    uint n;          // tokens
    uint n_head;
    uint head_dim;
    uint n_rot;
    uint ld;         // floats between tokens' rows
    uint n_pos;      // positions in the table
    uint sin_base;   // index of the sin table in tab (n_pos * n_rot / 2)
    uint neox;       // 1: NEOX pairs
} p;

void main()
{
    const uint half_rot = p.n_rot / 2u;
    const uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
    if (id >= p.n * p.n_head * half_rot) return;
    const uint i = id % half_rot, h = (id / half_rot) % p.n_head, j = id / (half_rot * p.n_head);
    const uint base = j * p.ld + h * p.head_dim;
    const uint a = base + (p.neox != 0u ? i : 2u * i), b = base + (p.neox != 0u ? i + half_rot : 2u * i + 1u);
    const uint pos = tok[2u * j];
    if (pos >= p.n_pos) {
        x[a] = x[b] = uintBitsToFloat(0x7fc00000u);
        return;
    }
    const uint ti = pos * half_rot + i;
    const float c = tab[ti], s = tab[p.sin_base + ti];
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
