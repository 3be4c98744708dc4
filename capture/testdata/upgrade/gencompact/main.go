// Writes a database file with the code of the release that introduced the
// compact event layout, for the upgrade test of later layouts.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
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
	svc, err := capture.NewService(st, capture.TestConfig(path), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	must(err)
	notices := []string{"Quero receber ofertas da Loja Exemplo pelo WhatsApp.", "Aceito receber avisos de entrega."}
	for i := 0; i < 150; i++ {
		_, err := svc.Record(capture.Record{Type: ledger.TypeOptIn, Phone: fmt.Sprintf("+55119%08d", 20_000_000+i), Topics: []string{"marketing"},
			Source: "web", NoticeText: notices[i%2], NoticeVersion: "2026-01", NoticeLocale: "pt-BR",
			Evidence: ledger.Evidence{PageURL: fmt.Sprintf("https://www.loja.example.com.br/checkout?pedido=%d", 7_000_000+i),
				IP: fmt.Sprintf("177.10.%d.%d", i/256, i%256), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}})
		must(err)
	}
	_, err = svc.Record(capture.Record{Type: ledger.TypeOptOut, Phone: "+5511920000003", Topics: []string{"marketing"}, Source: "web", Reason: "user_request"})
	must(err)
	_, err = svc.Record(capture.Record{Type: ledger.TypeOptIn, Pending: true, Phone: "+34612345678", Topics: []string{"marketing"}, Source: "widget", NoticeText: "Sí."})
	must(err)
	_, err = svc.Record(capture.Record{Type: ledger.TypeConfirm, Phone: "+34612345678", Source: "whatsapp"})
	must(err)
	_, err = svc.Erase("+5511920000004")
	must(err)
	h, err := st.Head()
	must(err)
	fmt.Printf("%d %x\n", h.Seq, h.Hash)
	must(st.Close())
}
