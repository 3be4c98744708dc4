package capture

import (
	"encoding/base64"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
)

// receiptRequest is POST /v1/receipts: a fresh link for one receipt, with
// its QR code, in one round trip.
type receiptRequest struct {
	Store    string   `json:"store" validate:"omitempty,max=64,safetext"`
	OrderRef string   `json:"order_ref" validate:"omitempty,max=200,safetext"`
	Topics   []string `json:"topics" validate:"required,min=1,max=20"`
	Preset   string   `json:"preset" validate:"omitempty,oneof=receipt-58 receipt-80"`
	Format   string   `json:"format" validate:"omitempty,oneof=json png escpos"`
	Locale   string   `json:"locale" validate:"omitempty,oneof=pt-BR en es"`
	// ESCPOS picks how an escpos answer draws the symbol: raster (GS v 0,
	// any printer, the default) or native (GS ( k, the printer encodes it).
	ESCPOS string `json:"escpos" validate:"omitempty,oneof=raster native"`
	// Number picks the business number the receipt's code opens (label or
	// phone_number_id of the settings' numbers).
	Number string `json:"number" validate:"omitempty,max=40"`
	// Init starts escpos bytes with ESC @ (printer reset). Off by default:
	// the bytes go into the till's own receipt, whose layout a reset breaks.
	Init bool `json:"init"`
}

// receiptJSON is the json answer of POST /v1/receipts.
type receiptJSON struct {
	ID          string     `json:"id"`
	Code        string     `json:"code"`
	URL         string     `json:"url"`
	WAURL       string     `json:"wa_url"`
	ExpiresAt   *time.Time `json:"expires_at"`
	QRPNGBase64 string     `json:"qr_png_base64"`
}

// receipt is a created receipt link with its rendered symbol. existed is
// true for a repeat of an earlier (store, order_ref).
type receipt struct {
	view    LinkView
	image   []byte
	ctype   string
	existed bool
}

// receiptRefKey is the link_refs key of a receipt: a till that retries
// after a timeout gets the link it was given the first time.
func receiptRefKey(req receiptRequest) string {
	if req.OrderRef == "" {
		return ""
	}
	return "receipt\x00" + req.Store + "\x00" + req.OrderRef
}

// checkReceipt checks what the struct tags cannot, naming every field at
// fault.
func (s *Service) checkReceipt(req receiptRequest) error {
	var errs []error
	if req.ESCPOS != "" && req.Format != "escpos" {
		errs = append(errs, fieldError("escpos", "only applies to format escpos"))
	}
	if req.Init && req.Format != "escpos" {
		errs = append(errs, fieldError("init", "only applies to format escpos"))
	}
	return mergeErrors(append(errs, s.checkEachTopic("topics", req.Topics))...)
}

// createReceipt makes a receipt link (source receipt, campaign = store,
// label = order reference, expiring after the settings' receipt_ttl) and
// renders its symbol for the receipt printer.
func (s *Service) createReceipt(req receiptRequest, idempotencyID string) (receipt, error) {
	if err := mergeErrors(Validate(&req), s.checkReceipt(req)); err != nil {
		return receipt{}, err
	}
	if req.Preset == "" {
		req.Preset = "receipt-58"
	}
	format := qr.FormatPNG
	if req.Format == "escpos" {
		format = qr.FormatESCPOS
	}
	st := s.Settings()
	expires := time.Now().UTC().Add(time.Duration(st.ReceiptTTL))
	made, existed, err := s.createLinksRef([]links.Request{{Source: "receipt", Campaign: req.Store, Label: req.OrderRef,
		Topics: req.Topics, Locale: req.Locale, ExpiresAt: &expires, Number: req.Number}}, []string{firstNonEmpty(receiptRefKey(req), idempotencyID)}, nil)
	if err != nil {
		return receipt{}, err
	}
	view := s.linkView(st, made[0], made[0].Scans, time.Now())
	// Receipt codes are unique, so their images bypass the image cache.
	body, ctype, err := qr.Render(links.QRContent(st.PublicURL, view.Code), qr.Options{Format: format, Preset: req.Preset,
		ESCPOSNative: req.ESCPOS == "native", ESCPOSInit: req.Init})
	if err != nil {
		return receipt{}, qrError(err)
	}
	return receipt{view: view, image: body, ctype: ctype, existed: existed[0]}, nil
}

func (h *Handler) createReceipt(c *fiber.Ctx) error {
	var req receiptRequest
	if err := decodeRequest(c, &req, func() error { return h.s.checkReceipt(req) }); err != nil {
		return err
	}
	idem, _ := c.Locals(localIdempotencyID).(string)
	r, err := h.s.createReceipt(req, idem)
	if err != nil {
		return err
	}
	// A repeat of the same (store, order_ref) is the same receipt: 200.
	if r.existed && req.OrderRef != "" {
		c.Status(fiber.StatusOK)
	} else {
		c.Status(fiber.StatusCreated)
	}
	if req.Format == "" || req.Format == "json" {
		return c.JSON(receiptJSON{ID: r.view.ID, Code: r.view.Code, URL: r.view.URL, WAURL: r.view.WAURL,
			ExpiresAt: r.view.ExpiresAt, QRPNGBase64: base64.StdEncoding.EncodeToString(r.image)})
	}
	c.Set("X-Consentry-Code", r.view.Code)
	c.Set("X-Consentry-Link-Id", r.view.ID)
	if r.view.ExpiresAt != nil {
		c.Set("X-Consentry-Expires-At", r.view.ExpiresAt.UTC().Format(time.RFC3339))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, r.ctype)
	return c.Send(r.image)
}
