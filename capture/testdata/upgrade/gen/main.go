// Writes a database file with the release's code, for the upgrade test.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	path := os.Args[1]
	st, err := store.Open(path)
	must(err)
	cfg := capture.TestConfig(path)
	cfg.AdminKey = "upgrade-admin-key-0123456789"
	cfg.WAAppSecrets = []string{"upgrade-secret"}
	svc, err := capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	must(err)
	app := fiber.New(capture.FiberConfig())
	capture.NewHandler(svc).Mount(app)
	api := func(method, p string, body any) []byte {
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(method, p, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+cfg.AdminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := app.Test(req, -1)
		must(err)
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			panic(fmt.Sprintf("%s %s: %d %s", method, p, resp.StatusCode, out))
		}
		return out
	}
	deliver := func(from, id, text string) {
		body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
			"id": "102938475610293", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]any{"display_phone_number": "5511955550123", "phone_number_id": "104857600012345"},
				"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Cliente"}, "wa_id": from}},
				"messages":          []any{map[string]any{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": map[string]any{"body": text}}},
			}}}}}})
		m := hmac.New(sha256.New, []byte("upgrade-secret"))
		m.Write(body)
		req := httptest.NewRequest("POST", "/webhooks/whatsapp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		resp, err := app.Test(req, -1)
		must(err)
		if resp.StatusCode != 200 {
			panic(resp.StatusCode)
		}
	}
	api("PUT", "/v1/settings", map[string]any{"wa_number": "+5511955550123"})
	notice := map[string]any{"text": "Quero receber mensagens da Consentry Demo", "version": "v1", "locale": "pt-BR"}
	api("POST", "/v1/optins", map[string]any{"phone": "+5511987651111", "topics": []string{"orders", "marketing"}, "source": "web", "notice": notice,
		"evidence": map[string]any{"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"}})
	api("POST", "/v1/optouts", map[string]any{"phone": "+5511987651111", "topics": []string{"marketing"}, "reason": "asked at the till"})
	api("POST", "/v1/optins", map[string]any{"phone": "+5521987653333", "topics": []string{"delivery"}, "notice": notice})
	deliver("5521987653333", "wamid.upgrade-stop", "PARAR")
	var link struct {
		Code string `json:"code"`
	}
	must(json.Unmarshal(api("POST", "/v1/links", map[string]any{"source": "receipt", "campaign": "loja", "topics": []string{"orders", "delivery"}}), &link))
	deliver("5511987650000", "wamid.upgrade-link", "Oi Consentry Demo, quero receber: "+link.Code)
	api("POST", "/v1/optins", map[string]any{"phone": "+5581988327966", "topics": []string{"payments"}, "notice": notice})
	api("POST", "/v1/optouts", map[string]any{"phone": "+5581988327966"})
	api("DELETE", "/v1/contacts/%2B5581988327966", nil)
	h, err := st.Head()
	must(err)
	fmt.Printf("%d %x\n", h.Seq, h.Hash)
	must(app.Shutdown())
	must(st.Close())
}
