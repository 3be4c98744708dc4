package capture

// webhookRoutes lists the routes of the WhatsApp webhook.
func (h *Handler) webhookRoutes() []route { return nil }
