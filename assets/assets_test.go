package assets

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// realisticConfig mirrors what the server inlines for a widget.
func realisticConfig(t *testing.T, kind string) []byte {
	t.Helper()
	cfg := map[string]any{
		"id": "wgt_abc", "kind": kind, "api": "http://127.0.0.1:8080",
		"business_name": "Padaria Sol", "locale": "pt-BR",
		"notice":         "Quero receber mensagens da Padaria Sol no WhatsApp sobre pedidos e promoções. Posso cancelar a qualquer momento respondendo SAIR.",
		"topics":         []map[string]string{{"id": "orders", "label": "Pedidos"}, {"id": "marketing", "label": "Promoções"}},
		"default_region": "BR", "country_code": "55",
		"theme":          map[string]any{"color": "#25D366", "position": "bottom-right"},
		"triggers":       map[string]any{"delay_s": 5, "scroll_pct": 0, "exit_intent": false, "url_include": []string{}, "url_exclude": []string{}},
		"frequency_days": 7, "double_opt_in": false,
		"wa_url":        "https://wa.me/5511999999999?text=Ol%C3%A1",
		"qr_svg_url":    "http://127.0.0.1:8080/l/ABCD/qr.svg",
		"greeting":      "Olá! Como podemos ajudar?",
		"form_selector": "#checkout", "phone_selector": "input[name=phone]",
	}
	b, err := json.Marshal(cfg) // escapes <, >, & and U+2028/9 like the server
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipLen(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf) // default level, as an HTTP server would use
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

func TestWidgetKinds(t *testing.T) {
	want := []string{"chat", "checkbox", "form", "popup"}
	if got := WidgetKinds(); !slices.Equal(got, want) {
		t.Fatalf("WidgetKinds() = %v, want %v", got, want)
	}
}

func TestWidgetScriptSizeBudget(t *testing.T) {
	const budget = 10 * 1024
	for _, kind := range WidgetKinds() {
		cfg := realisticConfig(t, kind)
		js, err := WidgetScript(kind, cfg)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if !bytes.Contains(js, cfg) {
			t.Errorf("%s: config not inlined", kind)
		}
		empty, _ := WidgetScript(kind, []byte("{}"))
		gzEmpty, gzFull := gzipLen(t, empty), gzipLen(t, js)
		t.Logf("%-8s raw %6d B, gzip %5d B (without config), %5d B (with config)", kind, len(empty), gzEmpty, gzFull)
		if gzEmpty > budget {
			t.Errorf("%s: %d bytes gzipped without config, budget %d", kind, gzEmpty, budget)
		}
		if gzFull > budget {
			t.Errorf("%s: %d bytes gzipped with a realistic config, budget %d", kind, gzFull, budget)
		}
	}
}

func TestWidgetScriptIsSafe(t *testing.T) {
	forbidden := []*regexp.Regexp{
		regexp.MustCompile(`\beval\s*\(`),
		regexp.MustCompile(`new\s+Function`),
		regexp.MustCompile(`\.innerHTML\b`),
		regexp.MustCompile(`\.outerHTML\b`),
		regexp.MustCompile(`insertAdjacentHTML`),
		regexp.MustCompile(`document\.write`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`setTimeout\(\s*["']`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*["']`),          // inline handler in markup
		regexp.MustCompile(`(?i)setAttribute\(\s*["']on[a-z]+`),  // handler attribute
		regexp.MustCompile(`(?i)setAttribute\(\s*["']style["']`), // blocked by CSP style-src
	}
	for _, kind := range WidgetKinds() {
		js, err := WidgetScript(kind, realisticConfig(t, kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range forbidden {
			if loc := re.FindIndex(js); loc != nil {
				t.Errorf("%s: forbidden pattern %s at %q", kind, re, js[max(0, loc[0]-40):min(len(js), loc[1]+40)])
			}
		}
		s := string(js)
		for _, want := range []string{"attachShadow", "adoptedStyleSheets", "replaceSync", "textContent", `"use strict"`} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: missing %q", kind, want)
			}
		}
		if !strings.HasSuffix(s, "})();\n") || !strings.Contains(s, "(function(){") {
			t.Errorf("%s: output is not a single IIFE", kind)
		}
	}
}

func TestWidgetScriptKindParts(t *testing.T) {
	has := func(kind, s string) bool {
		js, err := WidgetScript(kind, []byte(`{"id":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(js, []byte(s))
	}
	for kind, marker := range map[string]string{"popup": "function mountPopup(", "chat": "function mountChat(", "checkbox": "function attachBox(", "form": "var anchor = SCRIPT"} {
		for _, other := range WidgetKinds() {
			if got := has(other, marker); got != (other == kind) {
				t.Errorf("kind %s contains %s code: %v", other, kind, got)
			}
		}
	}
	if !has("popup", "optinForm") || !has("form", "optinForm") || has("chat", "function optinForm") {
		t.Error("shared form UI must ship with popup and form only")
	}
	if has("checkbox", ".cs-fab") || !has("chat", ".cs-fab") {
		t.Error("CSS sections are not split per kind")
	}
}

func TestWidgetScriptErrors(t *testing.T) {
	if _, err := WidgetScript("banner", []byte(`{}`)); err == nil {
		t.Error("unknown kind: want error")
	}
	for _, bad := range []string{``, `   `, `[]`, `"x"`, `{"id":`, `{}; alert(1)`} {
		if _, err := WidgetScript("popup", []byte(bad)); err == nil {
			t.Errorf("config %q: want error", bad)
		}
	}
	if _, err := WidgetScript("popup", []byte(" {\"id\":\"a\"}\n")); err != nil {
		t.Errorf("surrounding whitespace: %v", err)
	}
}

func TestCompactJSKeepsCode(t *testing.T) {
	got := compactJS("  // comment\n\n  var a = \"http://x\"; // tail\n    a();\n")
	want := "var a = \"http://x\"; // tail\na();\n"
	if got != want {
		t.Errorf("compactJS = %q, want %q", got, want)
	}
}

func TestCompactCSSSections(t *testing.T) {
	src := "/* head\n comment */\n.a{x:1}\n/*@ popup form */\n.b{x:2} /* c */ .c{x:3}\n/*@ chat */\n.d{x:4}\n/*@ all */\n.e{x:5}\n"
	if got, want := compactCSS(src, "popup"), ".a{x:1}.b{x:2}  .c{x:3}.e{x:5}"; got != want {
		t.Errorf("popup: %q, want %q", got, want)
	}
	if got, want := compactCSS(src, "chat"), ".a{x:1}.d{x:4}.e{x:5}"; got != want {
		t.Errorf("chat: %q, want %q", got, want)
	}
}

// A script carries its own locale's strings and no other's.
func TestWidgetScriptCarriesOneLocale(t *testing.T) {
	for _, c := range []struct{ locale, has, hasNot1, hasNot2 string }{
		{"pt-BR", "Quero receber", `"Subscribe"`, "Recibe novedades"},
		{"en", `"Subscribe"`, "Quero receber", "Recibe novedades"},
		{"es", "Recibe novedades", `"Subscribe"`, "Quero receber"},
		{"fr", `"Subscribe"`, "Quero receber", "Recibe novedades"}, // no French: English
	} {
		for _, kind := range WidgetKinds() {
			js, err := WidgetScript(kind, []byte(`{"id":"x","locale":"`+c.locale+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(js, []byte(c.has)) || bytes.Contains(js, []byte(c.hasNot1)) || bytes.Contains(js, []byte(c.hasNot2)) {
				t.Errorf("%s/%s: want %q only", kind, c.locale, c.has)
			}
		}
	}
}
