#!/usr/bin/env python3
"""Builds the small WordPiece test vocabulary (vocab.txt, Hugging Face format: one
piece a line, "##" marks a continuation) and the test strings (cases.txt, one a
line, C escapes \\xHH \\\\ for bytes that are not printable UTF-8).

Deterministic: words come from the shared KJV validation text
(kjv-llama-7m-val.txt, sha256 73906a73...), counted case-folded, most frequent
first (ties alphabetical).  Usage:
    python3 tests/data/tokenizer/wpm/make_vocab.py /work/shared/models/kjv-llama-7m-val.txt
"""
import collections
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
text = open(sys.argv[1], encoding='utf-8').read()
lines = [l for l in text.split('\n') if l.strip()]
counts = collections.Counter(w.lower() for w in re.findall(r"[A-Za-z]+", text))
words = sorted(counts, key=lambda w: (-counts[w], w))

vocab = ['[PAD]'] + ['[unused%d]' % i for i in range(99)] + ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
vocab += ['[unused%d]' % i for i in range(99, 104)]
seen = set(vocab)


def add(p):
    if p not in seen:
        seen.add(p)
        vocab.append(p)


# single characters, word-initial and continuation: ASCII, some accented letters
# (only reachable when accents are kept), Greek, Cyrillic, CJK, kana, jamo
singles = [chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper()]
singles += list('éèêëàâäçîïôöùûüñß') + list('αβγδεσςωπ') + list('абвгдежзийк')
singles += list('我爱北京天安门中国人的一是了不在有') + list('こんにちはカタ') + ['\u1100', '\u1112', '\u110b']
singles += ['ǆ', 'ⅻ', 'ｂ', 'ﬁ', '½']
for c in singles:
    add(c)
for c in singles:
    if c.isalnum():
        add('##' + c)
suffixes = ['ing', 'ed', 'eth', 'est', 'ly', 'ness', 'er', 'ers', 'tion', 'ation', 'ification', 's', 'es',
            'en', 'th', 'ful', 'less', 'ment', 'ous', 'ity', 'able', 'al', 'ic', 'ist', 'ism']
for s in suffixes:
    add('##' + s)
# frequent words whole; less frequent ones only by a stem, so they need "##" pieces
for i, w in enumerate(words[:4000]):
    if i < 1800:
        add(w)
    elif len(w) > 4:
        add(w[:len(w) // 2 + 1])
        add('##' + w[len(w) // 2 + 1:])
for w in ['internationalization', 'café', 'naïve', 'résumé', 'über', 'straße', 'αλφα', 'москва', '北京']:
    add(w)
with open(os.path.join(here, 'vocab.txt'), 'w', encoding='utf-8') as f:
    for p in vocab:
        f.write(p + '\n')

cases = [
    '', ' ', '   ', '\t', '\n', ' \t\n\r ', '\u00a0\u3000\u2003',
    'hello world', 'Hello World', 'HELLO WORLD', 'The LORD is my shepherd', 'the lord is my shepherd.',
    'hello, world!', 'hello,world!?', '...', '!!!', '"quoted"', "it's", "Paul's epistle", 'a-b_c', '(brackets) [x] {y}',
    '$5 + 3 = 8 < 9 > 7 ^ 2 ` ~ |', '#hash @at %per &amp *star /slash \\back',
    '3.14', '1,000,000', '2026-12-05', 'x86_64', 'a1b2c3', '007',
    'café', 'Café', 'CAFÉ', 'naïve', 'résumé', 'Résumé', 'über', 'Über', 'straße', 'STRASSE', 'São Paulo', 'Ångström',
    'e\u0301', 'cafe\u0301', 'e\u0301\u0301x', '\u0301', 'a\u0300b', 'n\u0303',
    '我爱北京天安门', '我爱 北京', '中国人的', 'hello我world', 'ab北cd', '𠀀𠀁', '\u2b820\u2b920',
    'こんにちは', 'カタカナ', 'ｶﾀｶﾅ', '한국어', '한', 'ᄒ',
    'αλφα', 'ΑΛΦΑ', 'ΣΑΣ', 'σας', 'Москва', 'МОСКВА',
    'İstanbul', 'ǅemal', 'Ⅻ', 'ＡＢＣ', 'ｂ', 'ﬁsh', '½', 'Å', 'K', 'Ω',
    '😀', 'hello 😀 world', 'thumbs👍🏽up', '❤️', '👨‍👩‍👧', '€100', '£5', '©2024', '™', '°C', '→', '∑x',
    '\x01hello', 'hel\x07lo', 'a\x00b', 'tab\there', 'new\nline', 'cr\rlf', '\x7f', 'zero\u200bwidth', 'soft\u00adhyphen',
    '\ufeffbom', 'a\u2028b', 'a\u0085b',
    '[CLS]', '[SEP]', '[UNK]', '[MASK]', '[PAD]', '[CLS] hello [SEP]', 'x[MASK]y', '[unused0]', '[cls]', '[ CLS ]',
    'supercalifragilisticexpialidocious', 'internationalization', 'INTERNATIONALIZATION',
    'internationalizationinternationalization',
    'ab' * 75, 'the' * 40, 'xq' * 60, 'z' * 150, 'a' * 101, 'unto' * 30 + 'zzqx',
    'qwxz', 'qwxz hello', 'hello qwxz world', 'bbbbbbbbbbbbbbbq',
    'walking', 'walked', 'walketh', 'blessedness', 'thankfulness', 'righteousness', 'unrighteousness',
    'justification', 'sanctification', 'glorification', 'Jerusalem', 'Nebuchadnezzar',
]
cases += ['\\xff', 'ab\\xffcd', '\\xe4\\xb8', 'x\\xe4\\xb8y', '\\xed\\xa0\\x80', '\\xc0\\xaf', '\\x80abc',
          'caf\\xc3', '\\xf0\\x9f\\x98', 'ok\\xfe\\xfeok']
cases += [l for l in lines[:200]]
cases += [l.upper() for l in lines[200:240]]
cases += [' '.join(lines[240 + 3 * k:243 + 3 * k]) for k in range(10)]


def esc(s):
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x20 or o == 0x7f:
            out.append('\\x%02x' % o)
        else:
            out.append(ch)
    return ''.join(out)


with open(os.path.join(here, 'cases.txt'), 'w', encoding='utf-8') as f:
    for c in cases:
        # raw-byte cases above are already escaped; elsewhere a lone backslash is doubled
        if '\\x' in c and c.encode('ascii', 'ignore') == c.encode('utf-8'):
            f.write(c + '\n')
        else:
            f.write(esc(c.replace('\\', '\\\\')) + '\n')
print('%d pieces, %d cases' % (len(vocab), len(cases)))
