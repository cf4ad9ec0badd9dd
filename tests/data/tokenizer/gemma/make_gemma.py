#!/usr/bin/env python3
"""Writes the Gemma-like SentencePiece vocabulary and the test strings of the gemma tests.

    make_gemma.py OUTDIR      -> OUTDIR/vocab.tsv, OUTDIR/cases.txt (deterministic)

vocab.tsv: one token a line, id order: text (\\xHH and \\\\ escapes) TAB score TAB type
(tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte).
The layout follows Gemma 2/3 GGUFs: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4, [@BOS@],
<unusedN>, <start_of_turn>/<end_of_turn> (control), user-defined runs of newlines, tabs and
spaces and HTML tags, the 256 byte tokens, then normal pieces with falling scores.
cases.txt: one string a line, same escapes.
"""
import os, sys

S = "\u2581"   # SentencePiece's space

def vocab():
    # as convert_hf_to_gguf.py writes Gemma: the SentencePiece model's own pieces, then the
    # entries of tokenizer_config.json's added_tokens_decoder on top (score -1000): special ones
    # and those that look special (<mask>, [@BOS@], <unusedN>) CONTROL, the others USER_DEFINED
    # with their "▁" turned back into spaces ("pre-normalized"); one "▁" run of the older
    # converters (before that step) is kept as well
    A = -1000.0
    v = [("<pad>", 0.0, 3), ("<eos>", 0.0, 3), ("<bos>", 0.0, 3), ("<unk>", 0.0, 2), ("<mask>", A, 3),
         ("[@BOS@]", A, 3)]
    v += [("<unused%d>" % i, A, 3) for i in range(10)]
    v += [("<start_of_turn>", A, 3), ("<end_of_turn>", A, 3)]
    v += [("\n" * k, A, 4) for k in range(2, 7)]
    v += [("\t" * k, A, 4) for k in range(1, 4)]
    v += [(" " * k, A, 4) for k in range(2, 9)]
    v += [(S * 16, A, 4)]
    v += [(t, A, 4) for t in ["<table>", "<tr>", "<td>", "</td>", "</tr>", "</table>", "<h1>", "</h1>",
                              "<b>", "</b>", "<br>", "<p>", "</p>", "<code>", "</code>"]]
    v += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    normal = []
    # frequent words (with and without the space mark), then suffixes, then single characters
    words = ["the", "and", "of", "to", "in", "is", "Hello", "hello", "world", "World", "Gemma", "model", "token",
             "turn", "start", "end", "user", "table", "code", "bold", "line", "text", "space", "tab", "new",
             "café", "naïve", "über", "中文", "日本", "is", "it", "a", "I", "you", "def", "return", "print",
             "html", "body", "div", "class", "x", "y", "z", "one", "two", "three", "unused", "mask", "bos", "eos",
             "pad", "unk", "he", "she", "we", "they", "this", "that", "for", "with"]
    for w in words:
        normal.append(S + w)
        normal.append(w)
    normal += ["ing", "ed", "er", "ly", "s", "es", "tion", "ment", "able", "ness", "un", "re", "pre",
               "ab", "bc", "cd", "abc", "bcd", "xy", "yz", "xyz", "He", "ll", "llo", "wor", "ld", "Ge", "mma",
               S + "(", "()", "):", S + "=", "==", S + "+", S + "-", "->", "::", "//", "/*", "*/", S + "{",
               S + "}", S + "<", "</", "/>", "<!", "--", "...", S + "\"", "\"", S + "'", "'s", "n't",
               "\n", "\n" + S, S + "\n", "12", "123", "2024", S + "1", "00", "é", "ü", "ï", "中", "文", "日", "本",
               "語", "は", "😀", S + "😀", "Ω", "ω", "Ж", "ж", S,
               "<m", "<ma", "sk", "sk>"]   # their merges spell the control token <mask>
    normal += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    normal += list(".,;:!?()[]{}<>=+-*/\\\"'#@$%^&_|~`")
    seen, out = set(t for t, _, _ in v), []
    for p in normal:
        if p not in seen:
            seen.add(p)
            out.append(p)
    # falling scores; "ab"/"bc" and "xy"/"yz" share theirs (ties are broken by position)
    score = 0.0
    for i, p in enumerate(out):
        if p not in ("bc", "yz"):
            score -= 1.0 if i < 40 else 0.25
        v.append((p, score, 1))
    return v

CASES = [
    "", " ", "  ", "   ", "    ", "         ", "\n", "\n\n", "\n\n\n", "\n\n\n\n\n\n\n", "\t", "\t\t", "\t\t\t\t",
    " \n", "\n ", " \n\n ", "\t \t", "a", "Hello", "Hello world", "Hello  world", "Hello   world",
    "Hello    world", "Hello         world", " Hello", "  Hello", "   Hello", "Hello ", "Hello  ", "Hello\n",
    "Hello\n\nworld", "Hello\n\n\nworld", "Hello\n \nworld", "line\n\n\n\n\n\n\n\nline", "a\tb", "a\t\tb",
    "a \t b", "\ttab", "  \t  ", "hello world", "the model", "The model", "THE MODEL", "theModel",
    "abc", "abcd", "bcd", "xyz", "xyzxyz", "abcabc", "ab bc cd", "Hello, world!", "Hello world.",
    "It's a naïve café über alles", "café", "Café", "CAFÉ", "über", "naïve", "中文", "日本語は", "中文 日本",
    "😀", " 😀", "😀😀", "a😀b", "Ω ω Ж ж", "ÀÉÎÕÜ", "ñ", "ß", "ﬁ", "\u00a0", "a\u00a0b", "\u3000",
    "\u0301", "e\u0301", "\ufeff", "\u200b", "\x01\x02", "\x7f", "~`^", "{}", "[]", "<>", "</>",
    "<b>bold</b>", "x<b>y</b>z", "<table><tr><td>1</td></tr></table>", "<h1>Title</h1>", "a<br>b",
    "<p>para</p>", "<code>x = 1</code>", "< b>", "<b >", "<B>", "<<b>>", "<b><b>", "word<b>word",
    "<unused0>", "<unused1><unused2>", "x<unused3>y", " <unused4> ", "<unused10>", "<unused>", "<unused 0>",
    "<start_of_turn>", "<end_of_turn>", "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>user\n  two spaces<end_of_turn>", "text<start_of_turn>", "<end_of_turn>text",
    " <start_of_turn> ", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[@BOS@]", "<bos>Hello", "Hello<eos>",
    "<bos><bos>", "a<mask>b", "<start_of_turn", "start_of_turn>", "<end_of_turn><end_of_turn>",
    "\u2581", "\u2581\u2581", "\u2581\u2581\u2581", "a\u2581b", "\u2581Hello", "a\u2581\u2581b",
    "def f(x):\n    return x\n", "def f(x):\n\treturn x\n", "if (a == b) {\n        print(a);\n}",
    "x -> y :: z", "/* comment */", "// line\n", "<!-- html -->", "a+b-c*d/e", "1 12 123 1234 2024",
    "3.14", "1,000", "100%", "$5", "#tag @user", "it's", "don't", "isn't", "you're", "'quoted'", "\"quoted\"",
    "...", "?!", "Hello... world?", "end.", "end .", "( x )", "(x)", "()", "):", "==", "= =",
    "table", "tables", "unused", "Gemma", "gemma", "GEMMA", "Gemma model", "start turn end",
    "user\nmodel\n", "\nHello", "\n\nHello", "  \n  ", "Hello \n world", "Hello\n  world", "Hello\n\n  world",
    "   leading and trailing   ", "multiple     spaces     here", "a b c d e f g", "a  b  c",
    "spaces\u2581and\u2581marks", "tab\tand  space", "x\r\ny", "\r", "\r\n\r\n",
    "a" + " " * 9 + "b", "a" + " " * 17 + "b", " " * 16, "\u2581" * 16, "a" + "\u2581" * 17 + "b",
    "x  \n\n  y", " \t \t ", "<unused0> x", "x <unused0>",
]

def cases():
    out = list(CASES)
    # user-defined tokens inside words, at both ends and next to spaces and control tokens
    ud = ["<b>", "</b>", "<unused5>", "\n\n", "\t\t", "<br>"]
    for i, u in enumerate(ud):
        for tpl in ["word%sword", " %s ", "%sHello", "Hello%s", "a %s  b", "<start_of_turn>%s<end_of_turn>",
                    "%s%s", "x\n%s\ny"]:
            out.append(tpl.replace("%s", u))
    # sentences with runs of spaces and newlines
    words = ["Hello", "world", "the", "model", "café", "中文", "xyz", "token", "😀", "<b>"]
    seps = [" ", "  ", "   ", "\n", "\n\n", " \n", "\t", "", "     ", "\n\n\n"]
    for i in range(60):
        a, b, c = words[i % 10], words[(i * 3 + 1) % 10], words[(i * 7 + 2) % 10]
        out.append(a + seps[i % 10] + b + seps[(i // 10) % 10] + c)
    return out

def esc(s):
    o = bytearray()
    for c in s.encode("utf-8"):
        o += ("\\x%02x" % c).encode() if c < 0x20 or c == 0x7F or c == 0x5C else bytes([c])
    return o.decode("utf-8")

if __name__ == "__main__":
    d = sys.argv[1]
    with open(os.path.join(d, "vocab.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for t, sc, ty in vocab():
            f.write("%s\t%g\t%d\n" % (esc(t), sc, ty))
    with open(os.path.join(d, "cases.txt"), "w", encoding="utf-8", newline="\n") as f:
        for c in cases():
            f.write(esc(c) + "\n")
