# Random templates for a differential check of qfit against Go's text/template (see README.md):
#   python3 random_templates.py SEED COUNT   -> random_in.json
import json, random, sys
random.seed(int(sys.argv[1]))
_inputs = {c['name']: c for c in json.load(open('inputs.json'))}
conv = _inputs['tool calls printing']['messages']; tools = _inputs['tools printing']['tools']
FIELDS_TOP = ['.System', '.Tools', '.Response', '.Think', '.IsThinkSet', '.ThinkLevel', '.Prompt', '$.System', '$.Tools', '(len $.Messages)']
FIELDS_MSG = ['.Role', '.Content', '.Thinking', '.ToolName', '.ToolCallID', '.ToolCalls', '(len .ToolCalls)', '$.System']
FIELDS_TC = ['.ID', '.Function.Name', '.Function.Arguments', '.Function.Index', '.Function.Arguments.city', '.Function.Arguments.days', '.Function.Arguments.list', '.Function.Arguments.obj', '.Function.Arguments.ratio', '.Function.Arguments.none', '.Function']
FIELDS_TOOL = ['.Type', '.Function.Name', '.Function.Description', '.Function.Parameters.Required', '.Function.Parameters.Properties', '.Function.Parameters.Type', '.Items', '.']
FIELDS_PROP = ['$p.Type', '$p.Description', '$p.Enum', '$p.Items', '$p.Required', '$p.AnyOf', '$k', '(toTypeScriptType $p)', '$p.ToTypeScriptType', '(len $p.Type)']
LIT = ['"x"', '"user"', '""', '1', '0', '2', '1.5', 'true', 'false', '"system"', '"assistant"', '"tool"']
def val(ctx, d=0):
    r = random.random()
    pool = {'top': FIELDS_TOP, 'msg': FIELDS_MSG + ['$i', '$m.Role'], 'tc': FIELDS_TC, 'tool': FIELDS_TOOL, 'prop': FIELDS_PROP + ['$k']}[ctx]
    if r < 0.45 or d > 2: return random.choice(pool)
    if r < 0.6: return random.choice(LIT)
    f = random.choice(['eq', 'ne', 'and', 'or', 'not', 'len', 'print', 'printf "%v|%s"', 'json', 'lt', 'index', 'slice'])
    if f in ('eq', 'ne', 'lt'): return '(%s %s %s)' % (f, val(ctx, d+1), random.choice(LIT + pool))
    if f in ('and', 'or'): return '(%s %s %s)' % (f, val(ctx, d+1), val(ctx, d+1))
    if f in ('not', 'len', 'json'): return '(%s %s)' % (f, val(ctx, d+1))
    if f == 'index': return '(index %s %s)' % (random.choice(['$.Messages', '.Function.Arguments' if ctx=='tc' else '$.Messages', '"abc"']), random.choice(['0', '1', '"city"', '2']))
    if f == 'slice': return '(slice %s %s)' % (random.choice(['$.Messages', '"hello"', '.Content' if ctx=='msg' else '"xy"']), random.choice(['0', '1', '2']))
    return '(%s %s %s)' % (f, val(ctx, d+1), val(ctx, d+1))
def trim(): return random.choice(['{{', '{{-', '{{ ']), random.choice(['}}', '-}}', ' }}'])
def act(s):
    l, r = trim()
    if l == '{{ ': l = '{{'
    return '%s %s %s' % (l, s, r.strip() if r != ' }}' else '}}')
def text(): return random.choice(['', ' ', '\n', 'A', ' b\n', '\n\n  ', '<x>'])
def block(ctx, d):
    out = []
    for _ in range(random.randint(1, 4)):
        r = random.random()
        if r < 0.35 or d > 3: out.append(text() + act(val(ctx)) + text())
        elif r < 0.5:
            out.append(act('if ' + val(ctx)) + block(ctx, d+1) + (act('else if ' + val(ctx)) + block(ctx, d+1) if random.random()<0.3 else '') + (act('else') + block(ctx, d+1) if random.random()<0.5 else '') + act('end'))
        elif r < 0.6 and ctx == 'top':
            out.append(act(random.choice(['range $i, $m := .Messages', 'range .Messages', 'range $m := $.Messages'])) + block('msg', d+1) + (act('else') + 'E' if random.random()<0.2 else '') + act('end'))
        elif r < 0.67 and ctx == 'msg':
            out.append(act('range .ToolCalls') + block('tc', d+1) + act('end'))
        elif r < 0.72 and ctx == 'msg':
            out.append(act('if eq $i 1') + act(random.choice(['continue', 'break'])) + act('end') if '$i' in ''.join(out) or True else '')
        elif r < 0.8 and ctx in ('top',):
            out.append(act('range .Tools') + block('tool', d+1) + act('range $k, $p := .Function.Parameters.Properties') + block('prop', d+1) + act('end') + act('end'))
        elif r < 0.87:
            out.append(act('with ' + val(ctx)) + text() + act('.') + (act('else') + 'W' if random.random()<0.5 else '') + act('end'))
        elif r < 0.93:
            out.append(act('$v := ' + val(ctx)) + act('$v'))
        else:
            out.append(act(val(ctx) + ' | printf "[%v]"'))
    return ''.join(out)
cases = []
for n in range(int(sys.argv[2])):
    t = block('top', 0) + '{{ range .Messages }}{{ end }}'
    cases.append({"name": str(n), "template": t, "messages": conv, "tools": tools, **({"think": True} if n % 3 == 0 else {})})
json.dump(cases, open('random_in.json', 'w'))
