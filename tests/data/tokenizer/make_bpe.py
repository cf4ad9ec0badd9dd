#!/usr/bin/env python3
"""Builds the small byte-level BPE vocabulary used by tests/test_tokenizer.c.

    make_bpe.py merges  TRAIN.txt > bpe-merges.txt     train ~N merges (deterministic)
    make_bpe.py gguf    bpe-merges.txt PRE OUT.gguf [TEXT:TYPE ...]
                                        vocab-only GGUF for llama.cpp (peer-tokenize), with
                                        more special tokens after the four below

Vocabulary (the C test rebuilds it the same way): ids 0..255 = the 256 byte
characters of the GPT-2 byte-to-unicode alphabet in byte order, then one token
per merge (left+right, in merge order, duplicates skipped), then the specials
<|endoftext|> (control, bos/eos), <|im_start|> (control), <|im_end|> (control),
<tool> (user-defined).
"""
import collections, struct, sys

def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, n = {}, 0
    for b in range(256):
        if b in bs:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + n); n += 1
    return m

B2U = bytes_to_unicode()
SPECIALS = [("<|endoftext|>", 3), ("<|im_start|>", 3), ("<|im_end|>", 3), ("<tool>", 4)]

def train(text, n_merges):
    words = collections.Counter()
    cur = ''
    for ch in text:            # crude pre-split: runs of letters/digits with a leading space
        if ch.isalnum() or (ch == ' ' and not cur):
            cur += ch
        else:
            if cur: words[cur] += 1
            cur = ch if ch == ' ' else ''
            if ch != ' ': words[ch] += 1
    if cur: words[cur] += 1
    seqs = {w: [B2U[b] for b in w.encode('utf-8')] for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs: break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for w in words:
            s = seqs[w]; o = []; i = 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    o.append(s[i] + s[i + 1]); i += 2
                else:
                    o.append(s[i]); i += 1
            seqs[w] = o
    return merges

def vocab_from_merges(merges, extra=()):
    toks = [B2U[b] for b in range(256)]
    seen = set(toks)
    for a, b in merges:
        t = a + b
        if t not in seen:
            toks.append(t); seen.add(t)
    types = [1] * len(toks)
    for s, ty in list(SPECIALS) + list(extra):
        toks.append(s); types.append(ty)
    return toks, types

def w_str(s):
    b = s.encode('utf-8'); return struct.pack('<Q', len(b)) + b

def w_kv(key, t, v):
    out = w_str(key) + struct.pack('<I', t)
    if t == 8: out += w_str(v)
    elif t == 4: out += struct.pack('<I', v)
    elif t == 6: out += struct.pack('<f', v)
    elif t == 7: out += struct.pack('<?', v)
    elif t == 9:
        et, arr = v
        out += struct.pack('<IQ', et, len(arr))
        for x in arr:
            if et == 8: out += w_str(x)
            elif et == 5: out += struct.pack('<i', x)
            elif et == 6: out += struct.pack('<f', x)
    return out

def write_gguf(merges, pre, path, extra=()):
    toks, types = vocab_from_merges(merges, extra)
    eot = toks.index("<|endoftext|>")
    kvs = [
        ("general.architecture", 8, "llama"), ("general.name", 8, "bpe-test"),
        ("llama.context_length", 4, 512), ("llama.embedding_length", 4, 256), ("llama.block_count", 4, 1),
        ("llama.feed_forward_length", 4, 768), ("llama.attention.head_count", 4, 4),
        ("llama.attention.head_count_kv", 4, 4), ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
        ("llama.rope.dimension_count", 4, 64), ("llama.vocab_size", 4, len(toks)),
        ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, pre),
        ("tokenizer.ggml.tokens", 9, (8, toks)), ("tokenizer.ggml.token_type", 9, (5, types)),
        ("tokenizer.ggml.merges", 9, (8, [a + ' ' + b for a, b in merges])),
        ("tokenizer.ggml.bos_token_id", 4, eot), ("tokenizer.ggml.eos_token_id", 4, eot),
        ("tokenizer.ggml.add_bos_token", 7, True), ("tokenizer.ggml.add_eos_token", 7, False),
    ]
    data = struct.pack('<IIQQ', 0x46554747, 3, 0, len(kvs)) + b''.join(w_kv(*kv) for kv in kvs)
    open(path, 'wb').write(data)

if __name__ == '__main__':
    if sys.argv[1] == 'merges':
        text = open(sys.argv[2], encoding='utf-8').read()
        for a, b in train(text, int(sys.argv[3]) if len(sys.argv) > 3 else 400):
            print(a, b)
    else:
        merges = [tuple(l.rstrip('\n').split(' ', 1)) for l in open(sys.argv[2], encoding='utf-8') if l.strip()]
        extra = [(a.rsplit(':', 1)[0], int(a.rsplit(':', 1)[1])) for a in sys.argv[5:]]
        write_gguf(merges, sys.argv[3], sys.argv[4], extra)
