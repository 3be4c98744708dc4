package capture

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
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

// ReadLinkRows reads rows of new links from a CSV with a header row, as
// `consentry qr batch` does (the same reader: comma or semicolon, a BOM,
// Excel's sep= line), within the body limit.
func ReadLinkRows(r io.Reader) ([]links.Request, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxBody {
		return nil, newError(CodePayloadTooLarge, "the CSV is too large")
	}
	rows, err := links.ReadRows(bytes.NewReader(raw))
	if err == nil && len(rows) > maxBatch {
		return nil, newError(CodeInvalidRequest, fmt.Sprintf("at most %d rows at a time", maxBatch))
	}
	return rows, err
}

// CheckLinkRows validates every row as creating it would, without
// creating anything: one error (or nil) per row.
func (s *Service) CheckLinkRows(rows []links.Request) []error {
	st, now := s.Settings(), time.Now().UTC()
	out := make([]error, len(rows))
	for i, r := range rows {
		if st.WANumber == "" {
			out[i] = errNoWANumber
			continue
		}
		_, out[i] = s.linkRecord(st, r, now)
	}
	return out
}

// WriteLinkBatch creates the rows' links (all or none) and writes their
// codes and manifest.csv as a ZIP, exactly as POST /v1/qr/batch does.
func (s *Service) WriteLinkBatch(w io.Writer, rows []links.Request, opts qr.Options) ([]string, error) {
	if err := s.checkQROptions(opts); err != nil {
		return nil, err
	}
	links, err := s.batchLinks(batchRequest{Rows: rows})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(links))
	for i, l := range links {
		ids[i] = l.ID
	}
	return ids, s.writeBatchZip(w, links, opts, nil)
}

// PosterText is what a signage poster prints around the code.
type PosterText struct {
	Headline, CallToAction, Fallback string
}

// DefaultPosterText is the poster's text when the editor changes nothing:
// the business name, the locale's call to action and a line for people
// who cannot scan ("or send CODE to +55 …").
func (s *Service) DefaultPosterText(l store.Link) PosterText {
	st := s.Settings()
	cta := signageCallToAction[l.Locale]
	if cta == "" {
		cta = signageCallToAction[st.DefaultLocale]
	}
	fallback := ""
	if st.WANumber != "" {
		pattern := map[string]string{"pt-BR": "ou envie %s para %s", "es": "o envía %s al %s"}[l.Locale]
		if pattern == "" {
			pattern = "or send %s to %s"
		}
		fallback = fmt.Sprintf(pattern, l.Code, st.WANumber)
	}
	return PosterText{Headline: st.BusinessName, CallToAction: cta, Fallback: fallback}
}

// LinkPoster renders a link's A4 signage poster (PDF) with the given text,
// the same symbol as GET /v1/links/{id}/qr?preset=signage.
func (s *Service) LinkPoster(id string, text PosterText) ([]byte, string, error) {
	l, err := s.LinkByID(id)
	if err != nil {
		return nil, "", err
	}
	opts := qr.Options{Format: qr.FormatPDF, Preset: "signage", Title: text.Headline, CallToAction: text.CallToAction, Caption: text.Fallback}
	body, _, err := qr.Render(links.QRContent(s.Settings().PublicURL, l.Code), opts)
	if err != nil {
		return nil, "", qrError(err)
	}
	return body, l.Code + "-poster.pdf", nil
}

// CreateLinkBatch is the first half of WriteLinkBatch: it checks the image
// options and creates the rows' links (all or none). WriteLinkBatchZip then
// writes their ZIP, reporting progress, so the console can do it while the
// person watches.
func (s *Service) CreateLinkBatch(rows []links.Request, opts qr.Options) ([]store.Link, error) {
	if err := s.checkQROptions(opts); err != nil {
		return nil, err
	}
	return s.batchLinks(batchRequest{Rows: rows})
}

// WriteLinkBatchZip writes the codes and manifest.csv of links made by
// CreateLinkBatch; progress (may be nil) is called after each code.
func (s *Service) WriteLinkBatchZip(w io.Writer, links []store.Link, opts qr.Options, progress func(done int)) error {
	return s.writeBatchZip(w, links, opts, progress)
}
