// Activation rows rounded as the CPU backend rounds them before a matrix product
// (qfit_vk_round_rows): each of n rows of k floats quantized to a vec-dot type by qfit's
// reference quantizer (src/quant) and dequantized back to float. One invocation per unit:
// a block of 32 (Q8_0, Q8_1) or 256 (Q8_K) values, one value (F16, BF16).
//   Q8_0/Q8_1: d = max|x| / 127, id = d != 0 ? 1 / d : 0, q = roundf(x * id) (half away
//              from zero), y = q * f16(d) (d stored as f16: qfit_fp32_to_fp16's rounding)
//   Q8_K:      v = the first value of largest |x| (signed), inv = -127 / v,
//              q = min(127, round-half-even(inv * x)), y = (1 / inv) * q (d in float32);
//              an all-zero block gives zeros
//   F16:       y = qfit_fp32_to_fp16(x) back to float, in integer arithmetic (bit-exact)
//   BF16:      y = qfit_fp32_to_bf16(x) back to float (round to nearest even, NaN quiet)
// The scales' divisions are done in integers, correctly rounded as C's float division
// (div_exact: OpFDiv may be 2.5 ulp off, and lavapipe's is), products are correctly
// rounded in Vulkan, the roundings and conversions are exact: the CPU's bits, but for a
// scale or quotient outside the normal range (a block's largest |x| below 127 * 2^-126),
// where the device's division and its subnormals decide. A zero quant gives d * +0, as C's
// (written as a sign bit: a compiler may fold float(int(v)) into v, keeping -0).
#version 450

#define LOCAL 64
layout(local_size_x = LOCAL) in;

#define T_F16 1u
#define T_Q8_0 8u
#define T_Q8_1 9u
#define T_Q8_K 15u
#define T_BF16 30u

layout(push_constant) uniform Params {
    uint k;      // values per row
    uint ldx;    // floats between input rows
    uint ldy;    // floats between output rows
    uint type;   // a T_ value above (qfit_type ids)
    uint units;  // units in all: n * k / unit size
} p;

layout(std430, binding = 0) readonly buffer X { uint x[]; };
layout(std430, binding = 1) writeonly buffer Y { uint y[]; };

// qfit_fp32_to_fp16 (src/quant/types.c), bit for bit
uint f32_to_f16(uint u)
{
    const uint sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    const uint e = a >> 23;
    if (e >= 143u) return sign | 0x7c00u;
    uint mant, shift, h;
    if (e >= 113u) {
        mant = a & 0x7fffffu;
        h = ((e - 112u) << 10) | (mant >> 13);
        shift = 13u;
    } else {
        if (e < 102u) return sign;
        mant = (a & 0x7fffffu) | 0x800000u;
        shift = 126u - e;
        h = mant >> shift;
    }
    const uint rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u) != 0u)) h++;
    return sign | h;
}

// qfit_fp16_to_fp32, as float32 bits
uint f16_to_f32(uint h)
{
    const uint sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0u) {
        if (m == 0u) return sign;
        uint s = 0u, mm = m;   // normalize the subnormal: m * 2^-24
        while ((mm & 0x400u) == 0u) { mm <<= 1; s++; }
        return sign | ((113u - s) << 23) | ((mm & 0x3ffu) << 13);
    }
    if (e == 31u) return sign | 0x7f800000u | (m << 13) | (m != 0u ? 0x400000u : 0u);
    return sign | ((e + 112u) << 23) | (m << 13);
}

// a / b correctly rounded (to nearest, ties to even), by long division of the mantissas:
// for finite a, b != 0 whose quotient is a normal float; otherwise the device's a / b
float div_exact(float a, float b)
{
    const uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
    const int ea = int((ua >> 23) & 0xffu), eb = int((ub >> 23) & 0xffu);
    if ((ua & 0x7fffffffu) == 0u || ea == 0 || eb == 0 || ea == 255 || eb == 255) return a / b;
    uint ma = (ua & 0x7fffffu) | 0x800000u;
    const uint mb = (ub & 0x7fffffu) | 0x800000u;
    int e = ea - eb + 127;
    if (ma < mb) { ma <<= 1; e -= 1; }   // ma / mb in [1, 2)
    uint q = 0u, r = ma;                 // r < 2 mb < 2^25 throughout
    for (int i = 0; i < 25; i++) {       // 24 bits of mantissa and a guard bit
        q <<= 1;
        if (r >= mb) { r -= mb; q |= 1u; }
        r <<= 1;
    }
    const uint guard = q & 1u;
    q >>= 1;
    if (guard != 0u && (r != 0u || (q & 1u) != 0u)) q++;
    if (q == 0x1000000u) { q >>= 1; e += 1; }
    if (e <= 0 || e >= 255) return a / b;
    return uintBitsToFloat(((ua ^ ub) & 0x80000000u) | (uint(e) << 23) | (q & 0x7fffffu));
}

// C's roundf: half away from zero (v - trunc(v) is exact)
float round_away(float v)
{
    const float t = trunc(v);
    return abs(v - t) >= 0.5 ? t + sign(v) : t;
}

void main()
{
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * LOCAL;
    if (i >= p.units) return;
    const uint bs = p.type == T_Q8_K ? 256u : (p.type == T_Q8_0 || p.type == T_Q8_1) ? 32u : 1u;
    const uint per_row = p.k / bs, row = i / per_row, blk = i % per_row;
    const uint xb = row * p.ldx + blk * bs, yb = row * p.ldy + blk * bs;
    if (p.type == T_F16) {
        y[yb] = f16_to_f32(f32_to_f16(x[xb]));
    } else if (p.type == T_BF16) {
        const uint u = x[xb];
        const uint b = (u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        y[yb] = (b & 0xffffu) << 16;
    } else if (p.type == T_Q8_K) {
        float amax = 0.0, vmax = 0.0;
        for (uint j = 0u; j < 256u; j++) {
            const float v = uintBitsToFloat(x[xb + j]);
            if (abs(v) > amax) { amax = abs(v); vmax = v; }
        }
        if (amax == 0.0) {
            for (uint j = 0u; j < 256u; j++) y[yb + j] = 0u;
            return;
        }
        const float inv = div_exact(-127.0, vmax), d = div_exact(1.0, inv);
        for (uint j = 0u; j < 256u; j++) {
            const int q = min(127, int(roundEven(inv * uintBitsToFloat(x[xb + j]))));
            y[yb + j] = q == 0 ? floatBitsToUint(d) & 0x80000000u : floatBitsToUint(d * float(q));   // d * +0
        }
    } else {   // Q8_0, Q8_1
        float amax = 0.0;
        for (uint j = 0u; j < 32u; j++) amax = max(amax, abs(uintBitsToFloat(x[xb + j])));
        const float d = div_exact(amax, 127.0), id = d != 0.0 ? div_exact(1.0, d) : 0.0;
        const float dh = uintBitsToFloat(f16_to_f32(f32_to_f16(floatBitsToUint(d))));
        for (uint j = 0u; j < 32u; j++) {
            const int q = int(round_away(uintBitsToFloat(x[xb + j]) * id));
            y[yb + j] = q == 0 ? 0u : floatBitsToUint(float(q) * dh);   // dh >= 0: d * +0 is +0
        }
    }
}
