package capture

import "github.com/gofiber/fiber/v2"

// webhookRoutes lists the routes of the WhatsApp webhook: public, but a
// delivery is accepted only with a valid signature. The body limit is
// checked inside receive, on the raw bytes; addresses that keep failing
// the signature or token check are turned away with 429.
func (h *Handler) webhookRoutes() []route {
	w := newWebhook(h.s)
	h.webhook = w
	gate := []fiber.Handler{newFailureGate(webhookFailureMax, webhookFailureWindow).handle}
	return []route{
		{"GET", "/webhooks/whatsapp", "", 0, w.verify, gate},
		{"POST", "/webhooks/whatsapp", "", 0, w.receive, gate},
	}
}
