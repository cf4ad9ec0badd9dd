import json, sys
D = sys.argv[1]
cases = {
 "user": [{"role": "user", "content": "Hello, how are you?"}],
 "user-assistant-user": [
  {"role": "user", "content": "Hello, how are you?"},
  {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
  {"role": "user", "content": "I'd like to show off how chat templating works!"}],
 "system-user-assistant-user": [
  {"role": "system", "content": "You are a helpful assistant."},
  {"role": "user", "content": "Hello, how are you?"},
  {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
  {"role": "user", "content": "I'd like to show off how chat templating works!"}],
}
json.dump(cases, open(D + "/messages.json", "w"), indent=1, ensure_ascii=False)

ex = []
mist = [
 ("no response", "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] "),
 ("response", "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}"),
 ("messages", "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}[INST] {{ end }}\n{{- end }}"),
]
m1 = [{"role": "user", "content": "Hello friend!"}, {"role": "assistant", "content": "Hello human!"}, {"role": "user", "content": "What is your name?"}]
for n, t in mist:
    ex.append({"name": "mistral/" + n, "template": t, "messages": m1,
               "expected": "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "})
m2 = [{"role": "system", "content": "You are a helpful assistant!"}] + m1
for n, t in mist:
    ex.append({"name": "mistral system/" + n, "template": t, "messages": m2,
               "expected": "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] "})
m3 = m1 + [{"role": "assistant", "content": "My name is Ollama and I"}]
for n, t in [("no response", "[INST] {{ .Prompt }}[/INST] "), ("response", "[INST] {{ .Prompt }}[/INST] {{ .Response }}"),
             ("messages", "\n{{- range $i, $m := .Messages }}\n{{- if eq .Role \"user\" }}[INST] {{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}{{ end }}\n{{- end }}")]:
    ex.append({"name": "mistral assistant/" + n, "template": t, "messages": m3,
               "expected": "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"})
for n, t in [("response", "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"),
             ("messages", "\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n")]:
    ex.append({"name": "chatml/" + n, "template": t, "messages": m2,
               "expected": "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n"})
suf = "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n{{- else }}{{ .Prompt }}\n{{- end }}"
ex.append({"name": "suffix/message", "template": suf, "messages": [{"role": "user", "content": "hello"}], "expected": "hello"})
ex.append({"name": "suffix/prompt suffix", "template": suf, "messages": [], "prompt": "def add(", "suffix": "return x",
           "expected": "<PRE> def add( <SUF>return x <MID>"})
tc = [{"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Tokyo", "unit": "celsius"}}}]}]
ex.append({"name": "arguments json", "template": "{{- range .Messages }}{{- range .ToolCalls }}{{ .Function.Arguments }}{{- end }}{{- end }}",
           "messages": tc, "expected": "{\"location\":\"Tokyo\",\"unit\":\"celsius\"}"})
ex.append({"name": "arguments range", "template": "{{- range .Messages }}{{- range .ToolCalls }}{{- range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{- end }}{{- end }}{{- end }}",
           "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]}], "expected": "city=Tokyo;"})
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City name"}}}}}]
ex.append({"name": "properties json", "template": "{{- range .Messages }}{{- end }}{{- range .Tools }}{{ .Function.Parameters.Properties }}{{- end }}",
           "messages": [{"role": "user", "content": "test"}], "tools": tools, "expected": "{\"location\":{\"type\":\"string\",\"description\":\"City name\"}}"})
ex.append({"name": "properties range", "template": "{{- range .Messages }}{{- end }}{{- range .Tools }}{{- range $name, $prop := .Function.Parameters.Properties }}{{ $name }}:{{ $prop.Type }};{{- end }}{{- end }}",
           "messages": [{"role": "user", "content": "test"}], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}],
           "expected": "location:string;"})
# TestCollate, observed through a template that prints what it sees
coll = "{{ range .Messages }}[{{ .Role }}|{{ .Content }}|{{ .ToolName }}]{{ end }}<{{ .System }}>"
ex.append({"name": "collate/consecutive user messages are merged", "template": coll,
           "messages": [{"role": "user", "content": "Hello"}, {"role": "user", "content": "How are you?"}],
           "expected": "[user|Hello\n\nHow are you?|]<>"})
ex.append({"name": "collate/consecutive tool messages are NOT merged", "template": coll,
           "messages": [{"role": "tool", "content": "sunny", "tool_name": "get_weather"}, {"role": "tool", "content": "72F", "tool_name": "get_temperature"}],
           "expected": "[tool|sunny|get_weather][tool|72F|get_temperature]<>"})
ex.append({"name": "collate/mixed messages with system", "template": coll,
           "messages": [{"role": "system", "content": "You are helpful"}, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"},
                        {"role": "user", "content": "What's the weather?"}, {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
                        {"role": "tool", "content": "72F", "tool_name": "get_temperature"}, {"role": "user", "content": "Thanks"}],
           "expected": "[system|You are helpful|][user|Hello|][assistant|Hi there!|][user|What's the weather?|][tool|sunny|get_weather][tool|72F|get_temperature][user|Thanks|]<You are helpful>"})
# TestParse (valid cases) rendered over one conversation; TestParseError
ex.append({"name": "parse error/TemplateNotClosed", "template": "{{ .Prompt ", "messages": [], "error": "unclosed action"})
ex.append({"name": "parse error/Template", "template": "{{define \"x\"}}{{template \"x\"}}{{end}}{{template \"x\"}}", "messages": [], "error": "template"})
json.dump(ex, open(D + "/execute_cases.json", "w"), indent=1, ensure_ascii=False)
