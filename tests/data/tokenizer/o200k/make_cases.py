#!/usr/bin/env python3
"""Writes OUTDIR/cases.txt (one test string a line, \\xHH and \\\\ escapes) and TRAIN
(the text the o200k test merges are trained on) for the o200k pre-tokenizer tests.
Deterministic: no randomness, no input files.   usage: make_cases.py OUTDIR TRAIN"""
import itertools, os, sys

HAND = [
    "Hello world", "HelloWorld", "helloWorld", "HELLOworld", "hELLO", "XMLHttpRequest", "getHTTPResponseCode",
    "iPhone", "McDonald's", "O'Neil", "JavaScript", "camelCaseWord", "snake_case_word", "kebab-case-word",
    "it's IT'S It'S don't DON'T Don'T we're WE'RE We'Re they've THEY'VE I'm I'M he'll HE'LL she'd SHE'D",
    "'s 's' 'S 'll 'LL 're 've 'd 'm 't", "x's y'S z'Ll", "rock'n'roll", "can't won't shan't", "Jones'",
    "ABC's ABC'S abc's", "USA'S", "l'amour L'Amour", "ÉCOLE école École ÉcoleÉcole", "éCOLE", "Ålborg ÅLBORG",
    "straße STRASSE Straße", "ǅemal ǄEMAL ǆemal", "ᾈ ᾀ ᾼ", "Ωmega ωMEGA", "ΑΒΓ αβγ Αβγ αΒγ", "Москва МОСКВА москва мОСКВА",
    "İstanbul ıSPARTA", "ǈ ǋ", "ʰʲʷ modifierʰ", "ĀāĂăĄą", "Œuvre œuvre", "ﬁnance ﬀ", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ ａｂｃ",
    "e\u0301cole E\u0301COLE", "a\u0300\u0301\u0302b", "\u0301start", "x \u0308y", "Z\u0351\u0352\u0353algo",
    "ñ N\u0303 n\u0303", "क्षत्रिय हिन्दी", "ไทย ภาษาไทย", "العربية مرحبا", "עברית", "한국어 텍스트", "조선말Korean",
    "中文文本", "日本語のテキスト", "カタカナとひらがな", "漢字Kanji混合", "中文English混合", "ABC中文def", "中文123",
    "１２３ ４５６７", "Ⅻ ⅻ ⅷ", "½ ¾ ²³", "١٢٣ ٤٥٦", "० १ २", "3.14159", "1,000,000", "12345678901", "1 22 333 4444 55555",
    "v1.2.3", "0x1F 0b1010", "-42 +7 ±3", "99% 100%", "$5.00 €10 £3 ¥400", "2024-01-15T12:30:00Z",
    "😀 😀😀 👍🏽 👨‍👩‍👧 🇫🇷", "hello😀world", "😀abc", "abc😀", " 😀", "❤️ ✨ ★☆", "→ ← ↑ ↓", "∑∫√∞ ≠ ≤≥",
    "   ", "\t", "\n", "\r\n", " \n ", "  \n\n  ", "a\n\nb", "a \n b", "a  \n  b", "a\t\tb", "a \t b",
    "line1\nline2\r\nline3", "\n\n\n", " a", "  a", "   a", "a ", "a  ", "a   ", " ", "  ", "\u3000中\u3000", "a\u00a0b",
    "a\u00a0\u00a0b", "a\u2003b", "a\u2028b", "a\u0085b", "a\x0bb\x0cc", "end.\n", "end!\n\n", "x/\n/y", "a/b/c",
    "http://example.com/path?q=1&r=2", "~/dir/file.txt", "C:\\Users\\me", "path/to/file/\n", "//comment\n",
    "def foo(x):\n    return x*2\n", "int main(void) {\n\treturn 0;\n}\n", "for (i = 0; i < n; i++) { a[i] += 1; }",
    "if x==1:\n        pass", "<div class=\"a\">Hi</div>", "{\"key\": [1, 2, 3], \"b\": null}", "SELECT * FROM t WHERE id=5;",
    "#include <stdio.h>", "x = y ** 2 // 3", "a->b->c", "foo::bar<T>()", "@decorator\ndef f(): pass",
    "    indented", "        deeply\n            nested", "trailing   \n", "!!!", "...", "?!?!", "---", "***bold***",
    "(parenthesis)", "[brackets]", "{braces}", "\"quotes\"", "'single'", "`backtick`", "a,b;c:d", "end. Next",
    "Mr. Smith's car", "e.g. i.e.", "U.S.A.", "don't\nstop", "x'\ny", "' s", "''", "'''", "a'b'c", "'Hello'",
    "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "<tool>call</tool>", "x<tool>y", "hi <|endoftext|> there",
    "ÀÁÂÃÄÅ àáâãäå", "ÇçĞğŞş", "ĳ Ĳ", "ŉ", "Ǳ ǲ ǳ", "ʼn", "ˈstress", "ꙮ", "𝐇𝐞𝐥𝐥𝐨 𝕳𝖊𝖑𝖑𝖔", "𐐀𐐨",
    "", "x", "X", "1", "_", "-", "\u200b", "a\u200bb", "a\u200db", "\ufeffbom",
    # gpt-oss harmony format (its special tokens are in the test vocabulary)
    "<|start|>assistant<|channel|>final<|message|>Hi there<|end|>", "<|start|>user<|message|>What's 2+2?<|end|>",
    "<|channel|>analysis<|message|>Let's think.<|end|><|start|>assistant", "x<|constrain|>json", "<|return|>",
    "<|call|>", "a<|end|>b", "to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>",
    " <|message|> ", "<|message|><|message|>", "<|start|", "|start|>", "<|Start|>",
]

# words that are whole tokens no merge reaches (merges are not ignored for o200k): cases, but
# kept out of the training text so that no merge builds them
UNTRAINED = ["qqq", " QQQ", "qqq QQQ qqqq"]

WORDS = ["the", "The", "THE", "tHe", "word", "Word", "WORD", "wOrD", "café", "Café", "CAFÉ", "naïve", "Naïve",
         "über", "Über", "ÜBER", "中文", "テスト", "Ωmega", "Δelta", "δΕΛΤΑ", "Привет", "ПРИВЕТ", "mixedCase", "ABCdef",
         "abcDEF", "x1", "X1", "1x", "a_b", "A_B", "hello123World", "you're", "YOU'RE", "You'Re", "it's", "IT's"]
SEPS = ["", " ", "  ", "\n", " \n", "\t", ",", ", ", "'", "/", "\n\n"]

def gen():
    out = list(HAND)
    n = 0
    for a, b in itertools.product(WORDS, WORDS):   # pairs, every separator in turn
        if (len(out) - len(HAND)) >= 220:
            break
        if (hash_idx(a, b)) % 3 == 0:
            out.append(a + SEPS[n % len(SEPS)] + b)
            n += 1
    return out

def hash_idx(a, b):    # deterministic (unlike hash()): sum of code points
    return sum(map(ord, a)) * 7 + sum(map(ord, b))

def raw_esc(s):
    out = bytearray()
    for c in s.encode("utf-8"):
        if c < 0x20 or c == 0x7F or c == 0x5C:
            out += ("\\x%02x" % c).encode()
        else:
            out.append(c)
    return out.decode("utf-8")

if __name__ == "__main__":
    d = sys.argv[1]
    cases = gen()
    train = list(cases)
    cases += UNTRAINED
    with open(os.path.join(d, "cases.txt"), "w", encoding="utf-8", newline="\n") as f:
        for c in cases:
            f.write(raw_esc(c) + "\n")
    # training text for the merges: every case, several times, so that merges cross case
    # boundaries (camelCase, ÉCOLEécole) and the pieces of contractions and digits
    with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as f:
        for c in train * 3:
            f.write(c + "\n")
