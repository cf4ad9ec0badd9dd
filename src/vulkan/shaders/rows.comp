// Row-wise and element-wise ops of the forward pass, one per build (-DOP_...):
//   OP_RMS_NORM  y[j] = x[j] / sqrt(mean(x[j]^2) + eps) * w: one workgroup per row, its LOCAL
//                threads sum squares over the row in turn, a tree in shared memory adds them
//   OP_SWIGLU    a[i] = silu(a[i]) * b[i] = a[i] / (1 + exp(-a[i])) * b[i]
//   OP_ADD       a[i] += b[i]
// All in float32.
#version 450

#define LOCAL 64
layout(local_size_x = LOCAL) in;

layout(push_constant) uniform Params {
    uint k;          // OP_RMS_NORM: elements per row; else elements in all
    uint ldx;        // OP_RMS_NORM: floats between input rows
    uint ldy;        // OP_RMS_NORM: floats between output rows
    float eps;
} p;

#if defined(OP_RMS_NORM)
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
shared float part[LOCAL];

void main()
{
    const uint row = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, xb = row * p.ldx, yb = row * p.ldy;
    float s = 0.0;
    for (uint i = t; i < p.k; i += LOCAL) s += x[xb + i] * x[xb + i];
    part[t] = s;
    barrier();
    for (uint h = LOCAL / 2u; h > 0u; h >>= 1u) {
        if (t < h) part[t] += part[t + h];
        barrier();
    }
    const float scale = 1.0 / sqrt(part[0] / float(p.k) + p.eps);
    for (uint i = t; i < p.k; i += LOCAL) y[yb + i] = x[xb + i] * scale * w[i];
}
#elif defined(OP_SWIGLU) || defined(OP_ADD)
layout(std430, binding = 0) buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };

void main()
{
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
    if (i >= p.k) return;
#if defined(OP_SWIGLU)
    const float g = a[i];
    a[i] = g / (1.0 + exp(-g)) * b[i];
#else
    a[i] += b[i];
#endif
}
#else
#error "no op: -DOP_RMS_NORM, -DOP_SWIGLU or -DOP_ADD"
#endif
