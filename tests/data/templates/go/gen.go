// Reference generator for tests/data/templates/go/cases.json: renders each case of inputs.json
// with Go's text/template over values shaped like the ones Ollama's template.Execute builds in
// its messages mode (template/template.go: collate, templateMessage, templateTool, ...), and
// records the output or the fact that Go fails.
//
//	go run gen.go < inputs.json > cases.json
//
// Written for qfit (not Ollama code); the type shapes follow Ollama's at the commit named in
// ../ollama/README.md, because their shapes decide how values print.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*pt = []string{s}
		return nil
	}
	var a []string
	err := json.Unmarshal(b, &a)
	*pt = a
	return err
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	if len(pt) == 0 {
		return ""
	}
	if len(pt) == 1 {
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

// ordered map of properties (insertion order in JSON)
type PropMap struct {
	keys []string
	m    map[string]ToolProperty
}

func (p *PropMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	p.m = map[string]ToolProperty{}
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		dec.Decode(&v)
		var tp ToolProperty
		if err := json.Unmarshal(v, &tp); err != nil {
			return err
		}
		p.keys = append(p.keys, k.(string))
		p.m[k.(string)] = tp
	}
	return nil
}

func (p *PropMap) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range p.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(p.m[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type ToolProperty struct {
	AnyOf       []ToolProperty `json:"anyOf,omitempty"`
	Type        PropertyType   `json:"type,omitempty"`
	Items       any            `json:"items,omitempty"`
	Description string         `json:"description,omitempty"`
	Enum        []any          `json:"enum,omitempty"`
	Properties  *PropMap       `json:"properties,omitempty"`
	Required    []string       `json:"required,omitempty"`
}

func tsType(t string) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "array":
		return "any[]"
	case "object":
		return "Record<string, any>"
	case "null":
		return "null"
	}
	return "any"
}

func (tp ToolProperty) ToTypeScriptType() string {
	if len(tp.AnyOf) > 0 {
		var s []string
		for _, a := range tp.AnyOf {
			s = append(s, a.ToTypeScriptType())
		}
		return strings.Join(s, " | ")
	}
	if len(tp.Type) == 0 {
		return "any"
	}
	var s []string
	for _, t := range tp.Type {
		s = append(s, tsType(t))
	}
	return strings.Join(s, " | ")
}

type templateProperties map[string]ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

func (t templateTool) String() string { b, _ := json.Marshal(t); return string(b) }

type templateTools []templateTool

func (t templateTools) String() string { b, _ := json.Marshal(t); return string(b) }

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     [][]byte
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

// input shapes (the JSON of an /api/chat request)
type inTool struct {
	Type     string `json:"type"`
	Items    any    `json:"items"`
	Function struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Parameters  struct {
			Type       string   `json:"type"`
			Defs       any      `json:"$defs"`
			Items      any      `json:"items"`
			Required   []string `json:"required"`
			Properties *PropMap `json:"properties"`
		} `json:"parameters"`
	} `json:"function"`
}

type inMessage struct {
	Role      string `json:"role"`
	Content   string `json:"content"`
	Thinking  string `json:"thinking"`
	ToolCalls []struct {
		ID       string `json:"id"`
		Function struct {
			Index     int            `json:"index"`
			Name      string         `json:"name"`
			Arguments map[string]any `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
	ToolName   string `json:"tool_name"`
	ToolCallID string `json:"tool_call_id"`
}

type inCase struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Messages json.RawMessage `json:"messages"`
	Tools    json.RawMessage `json:"tools,omitempty"`
	Think    *bool           `json:"think,omitempty"`
}

func values(c inCase) (map[string]any, error) {
	var msgs []inMessage
	if err := json.Unmarshal(c.Messages, &msgs); err != nil {
		return nil, err
	}
	var tools []inTool
	if c.Tools != nil {
		if err := json.Unmarshal(c.Tools, &tools); err != nil {
			return nil, err
		}
	}
	var system []string
	var out []*templateMessage
	for _, m := range msgs {
		m.Role = strings.ToLower(m.Role)
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if len(out) > 0 && out[len(out)-1].Role == m.Role && m.Role != "tool" {
			out[len(out)-1].Content += "\n\n" + m.Content
			continue
		}
		tm := &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			tm.ToolCalls = append(tm.ToolCalls, templateToolCall{ID: tc.ID, Function: templateToolCallFunction{
				Index: tc.Function.Index, Name: tc.Function.Name, Arguments: templateArgs(tc.Function.Arguments)}})
		}
		out = append(out, tm)
	}
	var tt templateTools
	if tools != nil {
		tt = make(templateTools, len(tools))
		for i, t := range tools {
			var props templateProperties
			if p := t.Function.Parameters.Properties; p != nil {
				props = templateProperties(p.m)
			}
			tt[i] = templateTool{Type: t.Type, Items: t.Items, Function: templateToolFunction{
				Name: t.Function.Name, Description: t.Function.Description,
				Parameters: templateToolFunctionParameters{Type: t.Function.Parameters.Type,
					Defs: t.Function.Parameters.Defs, Items: t.Function.Parameters.Items,
					Required: t.Function.Parameters.Required, Properties: props}}}
		}
	}
	think, isSet := false, false
	if c.Think != nil {
		think, isSet = *c.Think, true
	}
	return map[string]any{
		"System": strings.Join(system, "\n\n"), "Messages": out, "Tools": tt, "Response": "",
		"Think": think, "ThinkLevel": "", "IsThinkSet": isSet,
	}, nil
}

var funcs = template.FuncMap{
	"json": func(v any) string { b, _ := json.Marshal(v); return string(b) },
	"toTypeScriptType": func(v any) string {
		if p, ok := v.(ToolProperty); ok {
			return p.ToTypeScriptType()
		}
		return "any"
	},
}

func main() {
	var cases []inCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	var out []map[string]any
	for _, c := range cases {
		if !strings.Contains(strings.ToLower(c.Template), "messages") {
			panic(c.Name + ": the generator covers the messages mode only")
		}
		r := map[string]any{"name": c.Name, "template": c.Template, "messages": c.Messages}
		if c.Tools != nil {
			r["tools"] = c.Tools
		}
		if c.Think != nil {
			r["think"] = *c.Think
		}
		v, err := values(c)
		if err != nil {
			panic(err)
		}
		t, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
		var b bytes.Buffer
		if err == nil {
			err = t.Execute(&b, v)
		}
		if err != nil {
			r["error"] = true
			r["go_error"] = err.Error()
		} else {
			r["expected"] = b.String()
		}
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	enc.Encode(out)
}
