# Writes inputs.json: templates and messages exercising Go text/template as Ollama uses it.
# Expected outputs come from Go itself: go run gen.go < inputs.json > cases.json
import json, sys

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}
conv = [S("Be brief."), U("Hi <there> & \"you\""), A("Hello!"), U("Weather in Paris?")]
calls = [S("sys one"), S("sys two"), U("What's the weather?"),
         {"role": "assistant", "content": "", "thinking": "need a tool",
          "tool_calls": [{"id": "call_1", "function": {"index": 0, "name": "get_weather",
                          "arguments": {"city": "Paris", "days": 3, "ratio": 2.5, "big": 1000000,
                                        "tiny": 1e-7, "huge": 1e21, "ok": True, "none": None,
                                        "list": [1, "a", None], "obj": {"b": 1, "a": [2]},
                                        "html": "<b>&</b>", "uni": "caf\u00e9 \u2028 \u0001 \u00e9\u4e2d"}}}]},
         {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "call_1"},
         {"role": "TOOL", "content": "22C", "tool_name": "get_temp"},
         U("thanks"), U("bye")]
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
          "parameters": {"type": "object", "required": ["city"],
                         "properties": {"city": {"type": "string", "description": "City name"},
                                        "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                                        "days": {"type": "integer"},
                                        "opts": {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "number"}}},
                                        "either": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}}}},
         {"type": "function", "function": {"name": "no_params", "parameters": {"type": "object"}}}]

M = "{{- range .Messages }}{{ end }}"  # puts Ollama in its messages mode
cases = []
def case(name, tmpl, messages=conv, tools_=None, think=None):
    c = {"name": name, "template": tmpl, "messages": messages}
    if tools_ is not None: c["tools"] = tools_
    if think is not None: c["think"] = think
    cases.append(c)

case("trim markers", "a  {{- range .Messages }} x {{- .Role -}} \n\n {{ end -}}  \n b {{- /* c */ -}} c {{/* d */}} e")
case("if else-if chain", "{{ range .Messages }}{{ if eq .Role \"system\" }}S{{ else if eq .Role \"user\" \"tool\" }}U{{ else }}O{{ end }}{{ end }}")
case("range index and $", "{{ range $i, $m := .Messages }}{{ $i }}:{{ $m.Role }}:{{ len $.Messages }}|{{ end }}")
case("range one variable", "{{ range $m := .Messages }}{{ $m.Content }}/{{ . | len }};{{ end }}")
case("gemma3 last idiom", "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}{{ if $last }}LAST {{ .Content }}{{ end }}{{ end }}")
case("break and continue", "{{ range $i, $m := .Messages }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ if eq $i 3 }}{{ break }}{{ end }}[{{ $i }}]{{ end }}")
case("with and else", "{{ with .System }}<{{ . }}>{{ else }}none{{ end }}{{ with .Tools }}T{{ else }}no tools{{ end }}{{ range .Messages }}{{ end }}")
case("range else", "{{ range .Tools }}x{{ else }}no tools{{ end }}{{ range .Messages }}{{ end }}")
case("variable scopes", "{{ $x := 1 }}{{ if .Messages }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}{{ range .Messages }}{{ $x = .Role }}{{ $z := 5 }}{{ end }}{{ $x }}")
case("and or return operands", "{{ or .Prompt .System \"d\" }}|{{ and .System .Tools }}|{{ and .System \"yes\" }}|{{ or \"\" 0 }}|{{ not .Tools }}{{ range .Messages }}{{ end }}")
case("comparisons", "{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 3 }} {{ ne .System \"x\" }} {{ eq 1.5 1.5 }} {{ lt \"ab\" \"b\" }}" + M)
case("missing keys", "[{{ .Prompt }}][{{ print .Prompt }}][{{ if .Prompt }}y{{ else }}n{{ end }}][{{ eq .Prompt \"x\" }}][{{ .Response }}]" + M)
case("print spacing", "{{ print 1 2 \"a\" 3 true \"b\" \"c\" }}|{{ println \"x\" 1 }}|{{ print }}" + M)
case("printf verbs", "{{ printf \"%s=%d %q %v %t %%\" .System 42 \"a\\\"b\\n\" 1.5 true }}{{ printf \"%s-%s\" \"y\" (\"x\" | print) }}" + M)
case("printf final arg", "{{ .System | printf \"[%s]\" }}{{ \"x\" | printf \"%s-%s\" \"y\" }}" + M)
case("number and string literals", "{{ 'a' }} {{ 1.50 }} {{ 0x10 }} {{ -3 }} {{ 1e3 }} {{ 1_000 }} {{ \"a\\tb\\u00e9\\x41\" }} {{ `raw\\n` }} {{ 0o17 }} {{ 017 }}" + M)
case("len and slice of strings", "{{ len \"\u00e9\" }} {{ slice \"hello\" 1 3 }} {{ slice \"hello\" 2 }} {{ index \"abc\" 1 }}" + M)
case("index", "{{ index .Messages 1 }}|{{ (index .Messages 0).Role }}|{{ index $.Messages 2 | len }}" if False else "{{ (index .Messages 0).Role }}|{{ (index $.Messages 1).Content | len }}|{{ index .Messages 1 }}")
case("json of values", "{{ json .System }}|{{ range .Messages }}{{ json .Content }}{{ json .Role }}{{ end }}|{{ json .Tools }}|{{ json .Think }}|{{ json 1.5 }}|{{ json .Prompt }}")
case("json of a message", "{{ range .Messages }}{{ json . }}\n{{ end }}", messages=calls)
case("tool calls printing", "{{ range .Messages }}{{ if .ToolCalls }}{{ .ToolCalls }}|{{ range .ToolCalls }}{{ .ID }} {{ .Function.Index }} {{ .Function.Name }} {{ .Function.Arguments }} {{ json .Function.Arguments }} {{ .Function }}{{ end }}{{ end }}{{ end }}", messages=calls)
case("tool call arguments range", "{{ range .Messages }}{{ range .ToolCalls }}{{ range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{ end }}{{ end }}{{ end }}", messages=calls)
case("tool call argument index", "{{ range .Messages }}{{ range .ToolCalls }}{{ index .Function.Arguments \"city\" }} {{ .Function.Arguments.days }} {{ .Function.Arguments.missing }} {{ printf \"%v\" .Function.Arguments.obj }} {{ print .Function.Arguments.none }}{{ end }}{{ end }}", messages=calls)
case("thinking, tool name, collate", "{{ .System }}|{{ range .Messages }}[{{ .Role }}|{{ .Content }}|{{ .Thinking }}|{{ .ToolName }}|{{ .ToolCallID }}]{{ end }}", messages=calls)
case("tools printing", "{{ .Tools }}\n{{ range .Tools }}{{ . }}\n{{ .Function }}\n{{ .Function.Parameters }}\n{{ .Function.Parameters.Properties }}\n{{ .Function.Parameters.Required }}|{{ .Type }}|{{ .Items }}|{{ .Function.Description }}\n{{ end }}" + M, tools_=tools)
case("tool properties range", "{{ range .Tools }}{{ .Function.Name }}({{ range $name, $p := .Function.Parameters.Properties }}{{ $name }}: {{ $p.Type }} [{{ $p.Description }}] {{ $p.Enum }} {{ $p.ToTypeScriptType }} {{ toTypeScriptType $p }} {{ len $p.Type }}, {{ end }}){{ end }}" + M, tools_=tools)
case("tool property struct", "{{ range .Tools }}{{ range $n, $p := .Function.Parameters.Properties }}{{ if eq $n \"city\" \"unit\" }}{{ $p }}|{{ json $p }}|{{ end }}{{ end }}{{ end }}" + M, tools_=tools)
case("tool property missing key", "{{ range .Tools }}{{ index .Function.Parameters.Properties \"nope\" }}|{{ .Function.Parameters.Properties.nope.Type }}|{{ toTypeScriptType 3 }}{{ end }}" + M, tools_=tools)
case("empty tools", "{{ if .Tools }}T{{ else }}F{{ end }}{{ .Tools }}{{ len .Tools }}" + M, tools_=[])
case("think set", "{{ .Think }} {{ .IsThinkSet }} [{{ .ThinkLevel }}]" + M, think=True)
case("think false", "{{ .Think }} {{ .IsThinkSet }}" + M, think=False)
case("think unset", "{{ .Think }} {{ .IsThinkSet }}" + M)
case("chain on pipeline", "{{ (index .Messages 1).Content }}{{ ($.Messages).Tools }}" if False else "{{ (index .Messages 1).Content }}|{{ (slice .Messages 1 2) | len }}")
case("uppercase roles and merging", "{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}", messages=[{"role": "USER", "content": "a"}, {"role": "User", "content": "b"}, {"role": "Assistant", "content": "c"}])
case("empty messages", "{{ range .Messages }}x{{ else }}none{{ end }}{{ len .Messages }}", messages=[])
case("unicode content", "{{ range .Messages }}{{ .Content }}|{{ len .Content }}|{{ slice .Content 0 1 }}{{ end }}", messages=[U("h\u00e9llo \U0001F600 \u4e2d")])
case("dot printing of values map", "{{ range .Messages }}{{ end }}{{ .Think }}{{ with .System }}{{ . }}{{ end }}")
case("nested ranges and $", "{{ range $i, $m := .Messages }}{{ range $j, $n := $.Messages }}{{ if eq $i $j }}{{ $m.Role }}{{ end }}{{ end }}{{ end }}")
case("if on int and string", "{{ $n := len .Messages }}{{ if $n }}n={{ $n }}{{ end }}{{ if \"\" }}no{{ else }}empty{{ end }}{{ if 0 }}no{{ else }}zero{{ end }}{{ if 0.0 }}no{{ else }}zerof{{ end }}")
# found by comparing with Go on random templates: each was once wrong in qfit
case("text after a range left by break", "{{ range $i, $m := .Messages }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $i }}{{ end }}|after{{ range .Messages }}{{ continue }}{{ end }}|end")
case("invalid values in builtins", "{{ $x := .Prompt }}[{{ not $x }}][{{ not (.Prompt) }}][{{ eq (.Prompt) \"x\" }}][{{ and $x 1 }}][{{ or $x 0 }}]" + M)
case("eq of nil values", "{{ range .Tools }}[{{ eq .Items .Function.Parameters.Required }}][{{ eq .Function.Parameters.Required .Items }}]{{ end }}" + M, tools_=tools)
case("printf %s of composite values", "{{ range .Tools }}{{ printf \"%s|%s\" .Function.Parameters.Required .Items }}{{ range $k, $p := .Function.Parameters.Properties }}{{ printf \"%s;\" $p.Enum }}{{ end }}{{ end }}{{ range .Messages }}{{ range .ToolCalls }}{{ printf \"%s\" .Function.Arguments.list }}{{ end }}{{ end }}", messages=calls, tools_=tools)
case("printf bad verbs and extra arguments", "{{ printf \"%d %t %s %q\" \"x\" 1 2.5 true }}|{{ printf \"%s\" .Prompt }}|{{ printf \"a\" 1 \"b\" .Prompt }}|{{ printf \"%s %d\" 1 }}" + M)
case("bytes of a string", "{{ index \"abc\" 1 }} {{ printf \"%s\" (index \"abc\" 0) }} {{ eq (index \"abc\" 1) 98 }}" + M)
case("ordering of equal values", "{{ gt 1 1 }} {{ ge 1 1 }} {{ le 1 1 }} {{ lt 1 1 }} {{ gt 2 1 }} {{ le 2 1 }} {{ gt \"b\" \"b\" }} {{ ge 1.5 2.5 }}" + M)
# Go fails on these: qfit must fail too
case("error: field on string", "{{ range .Messages }}{{ .Role.Foo }}{{ end }}")
case("error: bad field of message", "{{ range .Messages }}{{ .Foo }}{{ end }}")
case("error: index out of range", "{{ index .Messages 9 }}")
case("error: slice out of range", "{{ slice .Messages 9 }}")
case("error: len of int", "{{ len 3 }}" + M)
case("error: compare int and string", "{{ eq 1 \"1\" }}" + M)
case("error: lt of bools", "{{ lt true false }}" + M)
case("error: range over string", "{{ range \"abc\" }}{{ end }}" + M)
case("error: not a function", "{{ .System 1 }}" + M)
case("error: nil command", "{{ nil }}" + M)
case("error: undefined function", "{{ foo }}" + M)
case("error: wrong arg count", "{{ not 1 2 }}" + M)
case("error: unexpected else", "{{ range .Messages }}{{ else if 1 }}{{ end }}")
json.dump(cases, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
