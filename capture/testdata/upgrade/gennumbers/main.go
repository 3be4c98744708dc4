// Writes a database file with the release's code in which the release
// stored contacts under its own reading of bare digits (11 or more digits
// read as a country code first), for the upgrade test of numbers.
package main

import (
	"bytes"
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
	cfg := capture.TestConfig(path) // default_region BR
	cfg.AdminKey = "upgrade-admin-key-0123456789"
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
	notice := map[string]any{"text": "Quero receber mensagens da Consentry Demo", "version": "v1", "locale": "pt-BR"}
	// The digits a Recife shop's spreadsheet holds for its customers.
	fmt.Printf("%s\n", api("POST", "/v1/optins", map[string]any{"phone": "81991234567", "topics": []string{"orders", "marketing"}, "notice": notice}))
	api("POST", "/v1/optins", map[string]any{"phone": "51987654321", "topics": []string{"orders"}, "notice": notice})
	fmt.Printf("%s\n", api("POST", "/v1/optouts", map[string]any{"phone": "51987654321"}))
	api("POST", "/v1/optins", map[string]any{"phone": "+5511987651111", "topics": []string{"orders"}, "notice": notice})
	h, err := st.Head()
	must(err)
	fmt.Printf("%d %x\n", h.Seq, h.Hash)
	must(app.Shutdown())
	must(st.Close())
}
