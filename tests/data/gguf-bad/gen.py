#!/usr/bin/env python3
"""Generates the GGUF reader's malformed-file corpus (and a few valid seeds).

Each file is a few hundred bytes. MANIFEST lists "<file>\t<expected>" where
<expected> is "ok" (the reader must accept it) or a fragment of the error
message the reader must produce. tests/test_gguf.c checks every entry; the
same files seed the fuzzer (fuzz/README.md).

Run from anywhere:  python3 tests/data/gguf-bad/gen.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_Q8_0 = 0, 1, 8
MAGIC = b"GGUF"


def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
def i64(v): return struct.pack("<q", v)
def s(x):
    b = x.encode() if isinstance(x, str) else x
    return u64(len(b)) + b


def kv(key, t, val):
    return s(key) + u32(t) + val


def arr(et, items):
    """items: list of already-encoded elements"""
    return u32(et) + u64(len(items)) + b"".join(items)


def tinfo(name, ne, t, off):
    return s(name) + u32(len(ne)) + b"".join(i64(d) for d in ne) + u32(t) + u64(off)


def pad(b, a=32):
    return b + b"\0" * ((a - len(b) % a) % a)


def gguf(kvs, tensors, data=b"", version=3, n_kv=None, n_t=None, align=32, magic=MAGIC):
    head = magic + u32(version) + u64(len(tensors) if n_t is None else n_t) + \
        u64(len(kvs) if n_kv is None else n_kv)
    meta = head + b"".join(kvs) + b"".join(tensors)
    return pad(meta, align) + data


def base_kvs(align=32):
    return [kv("general.architecture", STR, s("test")),
            kv("general.alignment", U32, u32(align)),
            kv("test.count", U32, u32(7))]


# tensor a: f32 [4, 2] = 32 bytes at 0; tensor b: q8_0 [32] = 34 bytes at 32
A_DATA = struct.pack("<8f", *[float(i) for i in range(8)])
B_DATA = struct.pack("<e", 0.5) + bytes(range(32))
DATA = pad(A_DATA) + pad(B_DATA)


def base_tensors():
    return [tinfo("a", [4, 2], T_F32, 0), tinfo("b", [32], T_Q8_0, 32)]


def good_small():
    return gguf(base_kvs(), base_tensors(), DATA)


def everything_kvs():
    return base_kvs() + [
        kv("t.u8", U8, b"\xff"), kv("t.i8", I8, b"\x80"),
        kv("t.u16", U16, struct.pack("<H", 65535)), kv("t.i16", I16, struct.pack("<h", -2)),
        kv("t.i32", I32, struct.pack("<i", -5)), kv("t.f32", F32, struct.pack("<f", 1.5)),
        kv("t.bool", BOOL, b"\x01"), kv("t.empty", STR, s("")),
        kv("t.u64", U64, u64(1 << 40)), kv("t.i64", I64, i64(-(1 << 40))),
        kv("t.f64", F64, struct.pack("<d", -2.25)),
        kv("t.strs", ARR, arr(STR, [s("x"), s(""), s("yz")])),
        kv("t.ints", ARR, arr(I32, [struct.pack("<i", v) for v in (1, -2, 3)])),
        kv("t.bools", ARR, arr(BOOL, [b"\0", b"\1"])),
        kv("t.none", ARR, arr(F32, [])),
        kv("t.nested", ARR, arr(ARR, [arr(U8, [b"\1", b"\2"]), arr(STR, [s("deep")]), arr(ARR, [])])),
    ]


def cases():
    c = {}
    c["good-small.case"] = (good_small(), "ok")
    c["good-everything.case"] = (gguf(everything_kvs(), base_tensors(), DATA), "ok")
    c["good-v2.case"] = (gguf(base_kvs(), base_tensors(), DATA, version=2), "ok")
    c["good-empty.case"] = (gguf([], []), "ok")
    c["good-align64.case"] = (gguf(base_kvs(64), [tinfo("a", [4, 2], T_F32, 0), tinfo("b", [32], T_Q8_0, 64)],
                                   pad(A_DATA, 64) + pad(B_DATA, 64), align=64), "ok")
    c["good-zero-dim.case"] = (gguf(base_kvs(), [tinfo("e", [0, 4], T_F32, 0), tinfo("a", [4, 2], T_F32, 0)],
                                    pad(A_DATA)), "ok")

    c["bad-magic.case"] = (gguf(base_kvs(), base_tensors(), DATA, magic=b"GGUX"), "bad magic")
    c["bad-tiny.case"] = (b"GG", "too small")
    c["bad-short-header.case"] = (MAGIC + u32(3) + b"\0\0", "unexpected end of file reading n_tensors")
    c["bad-v1.case"] = (gguf(base_kvs(), base_tensors(), DATA, version=1), "version 1 is not supported")
    c["bad-v4.case"] = (gguf(base_kvs(), base_tensors(), DATA, version=4), "unsupported GGUF version 4")
    c["bad-big-endian.case"] = (MAGIC + struct.pack(">I", 3) + struct.pack(">Q", 0) + struct.pack(">Q", 0),
                                "big-endian")
    c["bad-huge-n-kv.case"] = (gguf(base_kvs(), base_tensors(), DATA, n_kv=0xFFFFFFFF),
                               "n_kv 4294967295 cannot fit")
    c["bad-huge-n-tensors.case"] = (gguf(base_kvs(), base_tensors(), DATA, n_t=1 << 62),
                                    "n_tensors 4611686018427387904 cannot fit")
    c["bad-more-tensors.case"] = (gguf(base_kvs(), base_tensors(), DATA, n_t=3), "tensor name is an empty string")
    c["bad-huge-key-len.case"] = (gguf([u64(1 << 63) + b"k"], [], n_kv=1), "key length 9223372036854775808 exceeds")
    c["bad-huge-str-len.case"] = (gguf([s("k") + u32(STR) + u64(0xFFFFFFFFFFFFFFF0)], [], n_kv=1),
                                  "key 'k': string value length 18446744073709551600 exceeds")
    c["bad-arr-overflow.case"] = (gguf([kv("k", ARR, u32(U64) + u64((1 << 61) + 1))], []),
                                  "array of 2305843009213693953 u64 elements cannot fit")
    c["bad-arr-str-count.case"] = (gguf([kv("k", ARR, u32(STR) + u64(1 << 60) + s("a"))], []),
                                   "array of 1152921504606846976 str elements cannot fit")
    c["bad-arr-str-elem.case"] = (gguf([kv("k", ARR, u32(STR) + u64(2) + s("a") + u64(1000) + b"b")], []),
                                  "key 'k': array string length 1000 exceeds the 30 remaining")
    bomb = u32(U8) + u64(0)
    for _ in range(100):
        bomb = u32(ARR) + u64(1) + bomb
    c["bad-nesting-bomb.case"] = (gguf([kv("k", ARR, bomb)], []),
                                  "nested deeper than 8 levels")
    c["bad-value-type.case"] = (gguf([kv("k", 13, u32(0))], []), "bad value type 13")
    c["bad-value-type-huge.case"] = (gguf([kv("k", 0xFFFFFFFF, u32(0))], []), "bad value type 4294967295")
    c["bad-arr-elem-type.case"] = (gguf([kv("k", ARR, u32(77) + u64(0))], []), "bad array element type 77")
    c["bad-bool.case"] = (gguf([kv("k", BOOL, b"\x02")], []), "bool value 2 is not 0 or 1")
    c["bad-bool-arr.case"] = (gguf([kv("k", ARR, arr(BOOL, [b"\0", b"\7"]))], []), "bool element 1 has value 7")
    c["bad-empty-key.case"] = (gguf([kv("", U32, u32(1))], []), "is an empty string")
    c["bad-dup-key.case"] = (gguf(base_kvs() + [kv("test.count", U8, b"\1")], base_tensors(), DATA),
                             "duplicate key 'test.count'")
    c["bad-dup-tensor.case"] = (gguf(base_kvs(), [tinfo("a", [4, 2], T_F32, 0), tinfo("a", [8], T_F32, 32)],
                                     pad(A_DATA) + pad(A_DATA)), "duplicate tensor name 'a'")
    c["bad-n-dims-5.case"] = (gguf(base_kvs(), [tinfo("a", [1, 1, 1, 1, 8], T_F32, 0)], pad(A_DATA)),
                              "n_dims 5 exceeds the maximum of 4")
    c["bad-ne-negative.case"] = (gguf(base_kvs(), [tinfo("a", [4, -2], T_F32, 0)], pad(A_DATA)),
                                 "ne[1] = -2 is negative")
    c["bad-ne-overflow.case"] = (gguf(base_kvs(), [tinfo("a", [1 << 40, 1 << 40], T_F32, 0)], pad(A_DATA)),
                                 "overflows int64")
    c["bad-nbytes-overflow.case"] = (gguf(base_kvs(), [tinfo("a", [1 << 62], T_F32, 0)], pad(A_DATA)),
                                     "data size of 4611686018427387904 elements of type f32 overflows")
    c["bad-tensor-type.case"] = (gguf(base_kvs(), [tinfo("a", [8], 1000, 0)], pad(A_DATA)),
                                 "unknown tensor type id 1000")
    c["bad-tensor-type-retired.case"] = (gguf(base_kvs(), [tinfo("a", [32], 4, 0)], pad(A_DATA)),
                                         "unknown tensor type id 4")
    c["bad-misaligned.case"] = (gguf(base_kvs(), [tinfo("a", [4], T_F32, 8)], pad(A_DATA)),
                                "offset 8 is not a multiple of the alignment 32")
    c["bad-beyond-eof.case"] = (gguf(base_kvs(), [tinfo("a", [4, 2], T_F32, 0), tinfo("b", [32], T_Q8_0, 64)],
                                     DATA), "lies beyond the end of the file")
    c["bad-data-truncated.case"] = (good_small()[:-40], "tensor 'b': data [32, +34) lies beyond the end")
    c["bad-align-0.case"] = (gguf(base_kvs(0), base_tensors(), DATA), "general.alignment = 0 is not a nonzero power")
    c["bad-align-3.case"] = (gguf(base_kvs(3), base_tensors(), DATA, align=3),
                             "general.alignment = 3 is not a nonzero power")
    c["bad-align-type.case"] = (gguf([kv("general.alignment", U64, u64(32))], base_tensors(), DATA),
                                "general.alignment has type u64, expected u32")
    c["bad-block-size.case"] = (gguf(base_kvs(), [tinfo("b", [33], T_Q8_0, 0)], pad(B_DATA) * 2),
                                "ne[0] = 33 is not a multiple of the block size 32 of type q8_0")
    c["bad-overlap.case"] = (gguf(base_kvs(), [tinfo("a", [4, 2], T_F32, 0), tinfo("c", [16], T_F32, 0)],
                                  pad(A_DATA) * 2), "overlap")
    c["bad-empty-tensor-name.case"] = (gguf(base_kvs(), [tinfo("", [8], T_F32, 0)], pad(A_DATA)),
                                       "tensor name is an empty string")
    c["bad-long-tensor-name.case"] = (gguf(base_kvs(), [tinfo("t" * 64, [8], T_F32, 0)], pad(A_DATA)),
                                      "bytes long, more than the 63 a GGUF tensor name may have")
    c["ok-63-byte-tensor-name.case"] = (gguf(base_kvs(), [tinfo("t" * 63, [8], T_F32, 0)], pad(A_DATA)), "ok")
    c["bad-kv-truncated.case"] = (gguf([kv("general.architecture", STR, s("test"))], [])[:50],
                                   "key length 20 exceeds the 18 remaining bytes")
    return c


def main():
    c = cases()
    for name in os.listdir(HERE):
        if name.endswith((".gguf", ".case")):
            os.remove(os.path.join(HERE, name))
    with open(os.path.join(HERE, "MANIFEST"), "w") as m:
        m.write("# file<TAB>expected: 'ok' or a fragment of the reader's error message (generated by gen.py)\n")
        for name in sorted(c):
            data, expect = c[name]
            with open(os.path.join(HERE, name), "wb") as f:
                f.write(data)
            m.write("%s\t%s\n" % (name, expect))


if __name__ == "__main__":
    main()
