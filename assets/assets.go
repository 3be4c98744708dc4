// Package assets holds the browser code of the embeddable Consentry widget
// and builds the per-widget script served at GET /w/{id}.js.
//
// The readable sources live in assets/widget/. At init they are lightly
// compacted (indentation, blank lines and whole-line // comments removed)
// and assembled per kind and locale (a script carries only its own
// locale's strings), so WidgetScript is a plain concatenation.
package assets

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

//go:embed widget/widget-*.js widget/widget.css widget/strings.json
var widgetFS embed.FS

// kindFiles lists, per widget kind, the JS files after widget-core.js.
var kindFiles = map[string][]string{
	"popup":    {"widget-ui.js", "widget-popup.js"},
	"form":     {"widget-ui.js", "widget-form.js"},
	"chat":     {"widget-chat.js"},
	"checkbox": {"widget-checkbox.js"},
}

type parts struct{ head, tail []byte }

// built holds the parts by kind and locale key ("pt", "en", "es").
var built = map[string]map[string]parts{}

// stringLocales are the locale keys of strings.json; the first is the fallback.
var stringLocales = []string{"en", "pt", "es"}

func init() {
	cssSrc := mustRead("widget.css")
	core := compactJS(mustRead("widget-core.js"))
	var strs map[string]map[string]string
	if err := json.Unmarshal([]byte(mustRead("strings.json")), &strs); err != nil {
		panic(err)
	}
	for kind, files := range kindFiles {
		kindJSON, _ := json.Marshal(kind)
		css, _ := json.Marshal(compactCSS(cssSrc, kind))
		var code bytes.Buffer
		code.WriteString(core)
		for _, f := range files {
			code.WriteString(compactJS(mustRead(f)))
		}
		code.WriteString("start();\n})();\n")
		built[kind] = map[string]parts{}
		for _, loc := range stringLocales {
			str, err := json.Marshal(strs[loc])
			if err != nil || len(strs[loc]) != len(strs["en"]) {
				panic(fmt.Sprintf("assets: strings.json: locale %s is missing strings", loc))
			}
			var tail bytes.Buffer
			fmt.Fprintf(&tail, ";\nvar KIND=%s;\nvar STR=%s;\nvar CSS=%s;\n", kindJSON, str, css)
			tail.Write(code.Bytes())
			built[kind][loc] = parts{
				head: []byte("/* Consentry widget (" + kind + ") */\n(function(){\n\"use strict\";\nvar CFG="),
				tail: tail.Bytes(),
			}
		}
	}
}

// localeKey maps a widget locale (pt-BR, en, es…) to its strings.
func localeKey(locale string) string {
	k := strings.ToLower(locale)
	if len(k) > 2 {
		k = k[:2]
	}
	if slices.Contains(stringLocales, k) {
		return k
	}
	return stringLocales[0]
}

func mustRead(name string) string {
	b, err := widgetFS.ReadFile("widget/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// compactJS drops indentation, blank lines and whole-line // comments.
// Line breaks are kept, so automatic semicolon insertion is unaffected.
// The sources use no template literals or multi-line strings.
func compactJS(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// compactCSS keeps the stylesheet sections that apply to kind, drops
// comments and joins the lines. A line "/*@ kind1 kind2 */" (or "/*@ all */")
// starts a section; the text before the first marker applies to every kind.
func compactCSS(src, kind string) string {
	var b strings.Builder
	use, inComment := true, false
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "/*@"); ok {
			kinds := strings.Fields(strings.TrimSuffix(rest, "*/"))
			use = slices.Contains(kinds, kind) || slices.Contains(kinds, "all")
			continue
		}
		// Drop /* ... */ comments (the stylesheet has none inside strings).
		for line != "" {
			if inComment {
				end := strings.Index(line, "*/")
				if end < 0 {
					line = ""
					break
				}
				line, inComment = line[end+2:], false
				continue
			}
			start := strings.Index(line, "/*")
			if start < 0 {
				break
			}
			if use {
				b.WriteString(line[:start])
			}
			line, inComment = line[start+2:], true
		}
		if use {
			b.WriteString(line)
		}
	}
	return b.String()
}

// WidgetScript builds the script for one widget kind with its config
// inlined and the strings of the config's "locale" (English when it names
// none we have). Kinds: popup, chat, form, checkbox. configJSON must be a
// JSON object; it is trusted (the caller escapes <, >, & and U+2028/9).
// It returns an error for an unknown kind or a config that is not a JSON object.
func WidgetScript(kind string, configJSON []byte) ([]byte, error) {
	byLocale, ok := built[kind]
	if !ok {
		return nil, fmt.Errorf("assets: unknown widget kind %q", kind)
	}
	cfg := bytes.TrimSpace(configJSON)
	var head struct {
		Locale string `json:"locale"`
	}
	if len(cfg) == 0 || cfg[0] != '{' || json.Unmarshal(cfg, &head) != nil {
		return nil, fmt.Errorf("assets: widget config is not a JSON object")
	}
	p := byLocale[localeKey(head.Locale)]
	out := make([]byte, 0, len(p.head)+len(cfg)+len(p.tail))
	out = append(out, p.head...)
	out = append(out, cfg...)
	return append(out, p.tail...), nil
}

// WidgetKinds returns the supported widget kinds, sorted.
func WidgetKinds() []string {
	kinds := make([]string, 0, len(built))
	for k := range built {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
