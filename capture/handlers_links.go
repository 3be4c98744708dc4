package capture

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
)

func (h *Handler) createLink(c *fiber.Ctx) error {
	var req links.Request
	err := decodeRequest(c, &req, func() error {
		_, err := h.s.linkRecord(h.s.Settings(), req, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	idem, _ := c.Locals(localIdempotencyID).(string)
	v, existed, err := h.s.createLinkKeyed(req, idem)
	if err != nil {
		return err
	}
	if existed && req.Ref != "" { // its ref was used before: the same link, nothing new
		return c.JSON(v)
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (h *Handler) listLinks(c *fiber.Ctx) error {
	f := store.LinkFilter{Source: strings.Clone(c.Query("source")), Campaign: strings.Clone(c.Query("campaign")),
		After: strings.Clone(c.Query("after"))}
	if f.Source != "" && !isOneOf(f.Source, linkSources) {
		return fieldError("source", "must be one of: "+strings.Join(linkSources, ", "))
	}
	if utf8.RuneCountInString(f.Campaign) > 64 || !isSafeText(f.Campaign) {
		return fieldError("campaign", "must be a campaign name of at most 64 characters")
	}
	if f.After != "" {
		if _, ok := store.LinkSerial(f.After); !ok {
			return fieldError("after", "must be a link id from a previous page")
		}
	}
	limit, err := queryUint(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	f.Limit = int(limit)
	views, err := h.s.Links(f)
	if err != nil {
		return err
	}
	resp := fiber.Map{"links": views}
	if len(views) == f.Limit {
		resp["next_after"] = views[len(views)-1].ID
	}
	return c.JSON(resp)
}

func (h *Handler) getLink(c *fiber.Ctx) error {
	v, err := h.s.Link(c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

type linkPatchRequest struct {
	Label     *string         `json:"label" validate:"omitempty,max=200,safetext"`
	ExpiresAt json.RawMessage `json:"expires_at"`
	Disabled  *bool           `json:"disabled"`
	Number    *string         `json:"number" validate:"omitempty,max=40"`
}

func (h *Handler) patchLink(c *fiber.Ctx) error {
	var req linkPatchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u := LinkUpdate{Label: req.Label, Disabled: req.Disabled, Number: req.Number}
	if len(req.ExpiresAt) > 0 {
		u.SetExpiresAt = true
		if string(req.ExpiresAt) != "null" {
			var t time.Time
			if err := json.Unmarshal(req.ExpiresAt, &t); err != nil {
				return fieldError("expires_at", "must be an RFC 3339 time or null")
			}
			u.ExpiresAt = &t
		}
	}
	v, err := h.s.UpdateLink(c.Params("id"), u)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// openLink is GET /l/{code}: a redirect to WhatsApp and one scan counted,
// or a friendly page. It never answers 5xx.
func (h *Handler) openLink(c *fiber.Ctx) error {
	id, _, ok := h.s.verifyCode(c.Params("code"))
	if !ok {
		return h.sendLinkPage(c, fiber.StatusNotFound, "")
	}
	rt := h.s.links()
	l, wa, err := rt.opens.get(h.s, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.s.log.Error("reading a link", "link", id, "err", err)
		}
		return h.sendLinkPage(c, fiber.StatusNotFound, "")
	}
	if links.State(l, 0, time.Now()) != links.Active || wa == "" {
		return h.sendLinkPage(c, fiber.StatusGone, l.Locale)
	}
	// A scan is a GET by a person; one address counts once per link per
	// window (refreshes and floods do not inflate counts or use up
	// max_scans). A repeat is not counted; on a link with max_scans it is
	// not redirected either, so the link never redirects more people than
	// max_scans.
	count := c.Method() == fiber.MethodGet && !links.IsBot(c.Get(fiber.HeaderUserAgent))
	scans := rt.scans
	addr := c.IP()
	repeat := count && !scans.firstScan(addr, id, time.Now())
	if repeat {
		count = false
	}
	switch {
	case l.MaxScans > 0 && repeat:
		return h.sendLinkPage(c, fiber.StatusGone, l.Locale)
	case l.MaxScans > 0 && count:
		ok, err := scans.addDurably(id, uint64(l.MaxScans))
		if err != nil {
			h.s.log.Error("counting a scan", "link", id, "err", err)
		}
		if !ok {
			scans.forgetScan(addr, id)
			return h.sendLinkPage(c, fiber.StatusGone, l.Locale)
		}
	case l.MaxScans > 0:
		if scans.totals([]store.Link{l})[0] >= uint64(l.MaxScans) {
			return h.sendLinkPage(c, fiber.StatusGone, l.Locale)
		}
	case count:
		scans.add(id)
	}
	if count {
		h.s.metrics.CountScan(l.Source)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Referrer-Policy", "no-referrer")
	return c.Redirect(wa, fiber.StatusFound)
}

// Call to action on signage posters, per locale.
var signageCallToAction = map[string]string{
	"pt-BR": "Escaneie para receber novidades pelo WhatsApp",
	"en":    "Scan to get updates on WhatsApp",
	"es":    "Escanea para recibir novedades por WhatsApp",
}

// qrQuery reads the image options of GET /v1/links/{id}/qr; every bad
// value is a 422 naming the parameter.
func qrQuery(c *fiber.Ctx) (qr.Options, error) {
	opts := qr.Options{Format: qr.Format(strings.ToLower(strings.Clone(c.Query("format")))),
		Preset: strings.ToLower(strings.Clone(c.Query("preset"))), ECC: strings.ToUpper(strings.Clone(c.Query("ecc")))}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"margin", &opts.Margin}, {"module", &opts.Module}, {"dpi", &opts.DPI}} {
		v, err := queryUint(c, p.name, 0, 0, 100_000)
		if err != nil {
			return opts, err
		}
		*p.dst = int(v)
	}
	switch strings.ToLower(c.Query("escpos")) {
	case "", "raster":
	case "native":
		opts.ESCPOSNative = true
	default:
		return opts, fieldError("escpos", "must be raster or native")
	}
	// ESC @ resets the printer: only when asked, since the bytes usually
	// go into a till's own receipt.
	switch strings.ToLower(c.Query("init")) {
	case "", "false", "0":
	case "true", "1":
		if opts.Format != qr.FormatESCPOS {
			return opts, fieldError("init", "only applies to format escpos")
		}
		opts.ESCPOSInit = true
	default:
		return opts, fieldError("init", "must be true or false")
	}
	return opts, nil
}

// qrError maps the renderer's errors onto 422s.
func qrError(err error) error {
	var oe *qr.OptionError
	var ge *qr.GeometryError
	switch {
	case errors.As(err, &oe):
		return fieldError(oe.Field, oe.Reason)
	case errors.As(err, &ge):
		return newError(CodeInvalidRequest, ge.Reason)
	}
	return err
}

// renderedQR is an image with its validator.
type renderedQR struct {
	body        []byte
	contentType string
	etag        string
}

// renderCodeQR renders a link code's symbol, cached by ETag. The ETag is a
// hash of everything the bytes depend on, so it changes when the public URL
// or the business name does.
func (s *Service) renderCodeQR(st Settings, code, locale string, opts qr.Options) (renderedQR, error) {
	content := links.QRContent(st.PublicURL, code)
	opts.Title, opts.Caption = st.BusinessName, code
	opts.CallToAction = signageCallToAction[locale]
	if opts.CallToAction == "" {
		opts.CallToAction = signageCallToAction[st.DefaultLocale]
	}
	sum := sha256.New()
	for _, part := range []string{content, string(opts.Format), opts.Preset, opts.ECC, strconv.Itoa(opts.Margin),
		strconv.Itoa(opts.Module), strconv.Itoa(opts.DPI), strconv.FormatBool(opts.ESCPOSNative), strconv.FormatBool(opts.ESCPOSInit),
		opts.Title, opts.CallToAction, opts.Caption} {
		sum.Write([]byte(part))
		sum.Write([]byte{0})
	}
	etag := `"q` + hex.EncodeToString(sum.Sum(nil)[:12]) + `"`
	images := s.links().images
	if img, ok := images.get(etag); ok {
		return renderedQR{img.body, img.ctype, etag}, nil
	}
	body, ctype, err := qr.Render(content, opts)
	if err != nil {
		return renderedQR{}, qrError(err)
	}
	images.put(etag, cachedImage{body: body, ctype: ctype})
	return renderedQR{body, ctype, etag}, nil
}

// imageMaxAge: images depend on the code and the settings (public URL,
// business name), which change rarely; a day of caching with ETag
// revalidation keeps a changed public URL from lingering for a year.
const imageCacheControl = "max-age=86400, stale-while-revalidate=604800"

// sendImage answers with an image, or 304 when the client has it.
func sendImage(c *fiber.Ctx, img renderedQR, visibility, filename string) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderETag, img.etag)
	c.Set(fiber.HeaderCacheControl, visibility+", "+imageCacheControl)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), img.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, img.contentType)
	if filename != "" {
		c.Set(fiber.HeaderContentDisposition, `inline; filename="`+filename+`"`)
	}
	return c.Send(img.body)
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// fileExt is the file name extension of a rendered format.
func fileExt(f qr.Format, ctype string) string {
	switch {
	case f == qr.FormatESCPOS || strings.HasPrefix(ctype, "application/octet-stream"):
		return "bin"
	case strings.HasPrefix(ctype, "image/svg"):
		return "svg"
	case strings.HasPrefix(ctype, "application/pdf"):
		return "pdf"
	case strings.HasPrefix(ctype, "text/"):
		return "txt"
	}
	return "png"
}

func (h *Handler) linkQR(c *fiber.Ctx) error {
	opts, err := qrQuery(c)
	if err != nil {
		return err
	}
	l, err := h.s.linkByIDOrCode(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	img, err := h.s.renderCodeQR(h.s.Settings(), l.Code, l.Locale, opts)
	if err != nil {
		return err
	}
	c.Set("X-Consentry-Code", l.Code)
	c.Set("X-Consentry-Link-Id", l.ID)
	c.Set("X-Consentry-Url", links.URL(h.s.Settings().PublicURL, l.Code)) // lets tools warn about a loopback URL
	return sendImage(c, img, "private", l.Code+"."+fileExt(opts.Format, img.contentType))
}

// linkByIDOrCode reads a link by its id or by its printed code (what a
// print team has at hand when reprinting).
func (s *Service) linkByIDOrCode(ref string) (store.Link, error) {
	if _, isID := store.LinkSerial(ref); !isID {
		if id, _, ok := s.verifyCode(ref); ok {
			ref = id
		}
	}
	return s.LinkByID(ref)
}

// publicQR serves /l/{code}/qr.svg and .png for web pages (preset
// screen). A disabled or expired link answers 410 like its redirect, so a
// revoked code is not downloaded and printed again; the link comes from
// the cache the redirect uses.
func (h *Handler) publicQR(format qr.Format) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, code, ok := h.s.verifyCode(c.Params("code"))
		if !ok {
			return h.sendLinkPage(c, fiber.StatusNotFound, "")
		}
		l, _, err := h.s.links().opens.get(h.s, id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				h.s.log.Error("reading a link", "link", id, "err", err)
			}
			return h.sendLinkPage(c, fiber.StatusNotFound, "")
		}
		// Scans are not counted here: a used-up link's image stays available.
		if links.State(l, 0, time.Now()) != links.Active {
			return h.sendLinkPage(c, fiber.StatusGone, l.Locale)
		}
		st := h.s.Settings()
		img, err := h.s.renderCodeQR(st, code, st.DefaultLocale, qr.Options{Format: format, Preset: "screen"})
		if err != nil {
			return err
		}
		return sendImage(c, img, "public", "")
	}
}

func (h *Handler) listLinkKeys(c *fiber.Ctx) error {
	keys, err := h.s.LinkKeys()
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"keys": keys})
}

func (h *Handler) rotateLinkKey(c *fiber.Ctx) error {
	k, err := h.s.rotateLinkKey()
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (h *Handler) retireLinkKey(c *fiber.Ctx) error {
	id, err := strconv.Atoi(c.Params("id"))
	if err != nil {
		return errNotFound
	}
	if err := h.s.RetireLinkKey(id); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"id": id, "retired": true})
}
