package capture

// linkRoutes lists the routes of links, QR images and receipts.
func (h *Handler) linkRoutes() []route { return nil }
