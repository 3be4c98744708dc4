package capture

import (
	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/qr"
)

// Exported equivalents of internal helpers, for the console package (which
// builds on capture and must render exactly what the API renders).

// QROptionsFromQuery reads format, preset, ecc, margin, module, dpi and
// escpos from the query string as GET /v1/links/{id}/qr does.
func QROptionsFromQuery(c *fiber.Ctx) (qr.Options, error) { return qrQuery(c) }

// LinkQRImage renders a link's QR code exactly as GET /v1/links/{id}/qr
// does (same cache, same 422s) and names the file to download it as.
func (s *Service) LinkQRImage(id string, opts qr.Options) (body []byte, contentType, filename, etag string, err error) {
	l, err := s.LinkByID(id)
	if err != nil {
		return nil, "", "", "", err
	}
	img, err := s.renderCodeQR(s.Settings(), l.Code, l.Locale, opts)
	if err != nil {
		return nil, "", "", "", err
	}
	return img.body, img.contentType, l.Code + "." + fileExt(opts.Format, img.contentType), img.etag, nil
}
