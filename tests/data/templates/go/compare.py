# Compares Go's and qfit's results: python3 compare.py IN GO QFIT (see README.md)
import json, sys
i=json.load(open(sys.argv[1])); g=json.load(open(sys.argv[2])); q=json.load(open(sys.argv[3]))
bad=0; n=0
for a,b,c in zip(i,g,q):
    if b.get('skip'): continue
    n+=1
    ge='error' in b; qe='error' in c
    if ge and qe: continue
    if not ge and not qe and ('invalid_utf8' in c or b['expected']==c['expected']): continue
    bad+=1
    if bad<=15:
        print('=== ', a['name'], repr(a['template'][:400]))
        print('  go:', repr(b.get('expected', b.get('go_error')))[:400])
        print('  qf:', repr(c.get('expected', c.get('error')))[:400])
print('total', n, 'mismatch', bad)
