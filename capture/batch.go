package capture

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
)

// maxBatch is the most links one POST /v1/qr/batch renders.
const maxBatch = 1000

// batchRequest is POST /v1/qr/batch: existing links by id, or rows of new
// links to create, rendered with one set of image options.
type batchRequest struct {
	Links  []string      `json:"links" validate:"max=1000,dive,max=40"`
	Rows   []LinkRequest `json:"rows" validate:"max=1000"`
	Format string        `json:"format" validate:"omitempty,max=10"`
	Preset string        `json:"preset" validate:"omitempty,max=20"`
	ECC    string        `json:"ecc" validate:"omitempty,max=1"`
	Margin int           `json:"margin"`
	Module int           `json:"module"`
	DPI    int           `json:"dpi"`
	ESCPOS string        `json:"escpos" validate:"omitempty,oneof=raster native"`
}

func (r batchRequest) options() qr.Options {
	return qr.Options{Format: qr.Format(strings.ToLower(r.Format)), Preset: strings.ToLower(r.Preset),
		ECC: strings.ToUpper(r.ECC), Margin: r.Margin, Module: r.Module, DPI: r.DPI, ESCPOSNative: r.ESCPOS == "native"}
}

// checkQROptions renders a stand-in code first, so bad options are a 422
// before any link is created. Every code has the same length and
// alphabet, so the geometry of the stand-in is the geometry of all.
func (s *Service) checkQROptions(opts qr.Options) error {
	st := s.Settings()
	_, err := s.renderCodeQR(st, strings.Repeat("0", codeLen), st.DefaultLocale, opts)
	return err
}

// batchLinks resolves a batch request to links: the listed ones, or new
// ones created from rows in one transaction.
func (s *Service) batchLinks(req batchRequest) ([]store.Link, error) {
	switch {
	case len(req.Links) > 0 && len(req.Rows) > 0:
		return nil, newError(CodeInvalidRequest, "give either links or rows, not both")
	case len(req.Links) > 0:
		links := make([]store.Link, len(req.Links))
		for i, id := range req.Links {
			l, err := s.LinkByID(id)
			if err != nil {
				var e *Error
				if errors.As(err, &e) && e.Code == CodeNotFound {
					return nil, fieldError(fmt.Sprintf("links[%d]", i), "no such link")
				}
				return nil, err
			}
			links[i] = l
		}
		return links, nil
	case len(req.Rows) > 0:
		return s.createLinks(req.Rows, func(i int) string { return fmt.Sprintf("rows[%d].", i) })
	}
	return nil, newError(CodeInvalidRequest, "give links (ids) or rows (new links) to render")
}

// writeBatchZip writes one image per link and manifest.csv. progress, when
// set, is called after each link.
func (s *Service) writeBatchZip(w io.Writer, links []store.Link, opts qr.Options, progress func(done int)) error {
	st := s.Settings()
	zw := zip.NewWriter(w)
	var manifest bytes.Buffer
	cw := newCSVWriter(&manifest)
	_ = cw.Write([]string{"id", "code", "url", "wa_url", "file", "source", "campaign", "label"})
	for i, l := range links {
		img, err := s.renderCodeQR(st, l.Code, l.Locale, opts)
		if err != nil {
			return err
		}
		name := l.Code + "." + fileExt(opts.Format, img.contentType)
		method := zip.Deflate
		if strings.HasPrefix(img.contentType, "image/png") {
			method = zip.Store // already compressed
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: l.CreatedAt})
		if err != nil {
			return err
		}
		if _, err := f.Write(img.body); err != nil {
			return err
		}
		_ = cw.Write([]string{l.ID, l.Code, linkURL(st.PublicURL, l.Code), waURL(st, l), name, l.Source,
			l.Campaign, l.Label})
		if progress != nil {
			progress(i + 1)
		}
	}
	cw.Flush()
	f, err := zw.CreateHeader(&zip.FileHeader{Name: "manifest.csv", Method: zip.Deflate, Modified: time.Now()})
	if err != nil {
		return err
	}
	if _, err := f.Write(manifest.Bytes()); err != nil {
		return err
	}
	return zw.Close()
}

func (h *Handler) qrBatch(c *fiber.Ctx) error {
	var req batchRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	opts := req.options()
	if err := h.s.checkQROptions(opts); err != nil {
		return err
	}
	links, err := h.s.batchLinks(req)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := h.s.writeBatchZip(&buf, links, opts, nil); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consentry-codes.zip"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// RunQR is `consentry qr`: one code to stdout or a file
// (--link ID or --code CODE), or `consentry qr batch`: links created from a
// CSV and written as a ZIP with manifest.csv, with a progress bar on
// stderr. It opens the database directly (--db or CONSENTRY_DB), which
// works only while no server holds the file.
func RunQR(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "batch" {
		return runQRBatch(args[1:], stdin, stderr)
	}
	fs := flag.NewFlagSet("qr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", firstNonEmpty(os.Getenv("CONSENTRY_DB"), "./consentry.db"), "database file ($CONSENTRY_DB)")
	linkID := fs.String("link", "", "link id (lnk_…)")
	code := fs.String("code", "", "link code")
	out := fs.String("out", "", "file to write (default stdout)")
	flags := addQRFlags(fs, "txt")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: consentry qr (--link ID | --code CODE) [--format txt|png|svg|pdf|escpos] [--preset P] [--out FILE]\n       consentry qr batch --in rows.csv --out codes.zip [--format svg] [--preset packaging]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*linkID == "") == (*code == "") || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	svc, closeStore, err := openServiceForCLI(*db, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "qr:", err)
		return 1
	}
	defer closeStore()
	id := *linkID
	if *code != "" {
		var ok bool
		if id, _, ok = svc.verifyCode(strings.TrimSpace(*code)); !ok {
			fmt.Fprintln(stderr, "qr: not a valid code of this instance")
			return 1
		}
	}
	l, err := svc.LinkByID(id)
	if err != nil {
		fmt.Fprintln(stderr, "qr:", cliMessage(err))
		return 1
	}
	img, err := svc.renderCodeQR(svc.Settings(), l.Code, l.Locale, flags.options())
	if err != nil {
		fmt.Fprintln(stderr, "qr:", cliMessage(err))
		return 1
	}
	if *out == "" {
		_, err = stdout.Write(img.body)
	} else {
		err = writeFileAtomic(*out, func(w io.Writer) error { _, err := w.Write(img.body); return err })
	}
	if err != nil {
		fmt.Fprintln(stderr, "qr:", err)
		return 1
	}
	if *out != "" {
		fmt.Fprintf(stderr, "wrote %s for %s (%s)\n", *out, l.ID, linkURL(svc.Settings().PublicURL, l.Code))
	}
	return 0
}

type qrFlags struct {
	format, preset, ecc, escpos *string
	margin, module, dpi         *int
}

func addQRFlags(fs *flag.FlagSet, defFormat string) qrFlags {
	return qrFlags{
		format: fs.String("format", defFormat, "png, svg, pdf, txt or escpos"),
		preset: fs.String("preset", "", "receipt-58, receipt-80, packaging, signage or screen (default: by format)"),
		ecc:    fs.String("ecc", "", "error correction L, M, Q or H (default: by preset)"),
		escpos: fs.String("escpos", "raster", "escpos mode: raster or native"),
		margin: fs.Int("margin", 0, "quiet zone in modules (default 4)"),
		module: fs.Int("module", 0, "dots per module (default: by preset)"),
		dpi:    fs.Int("dpi", 0, "dots per inch (default: by preset)"),
	}
}

func (f qrFlags) options() qr.Options {
	return batchRequest{Format: *f.format, Preset: *f.preset, ECC: *f.ecc, Margin: *f.margin, Module: *f.module,
		DPI: *f.dpi, ESCPOS: *f.escpos}.options()
}

func runQRBatch(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("qr batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", firstNonEmpty(os.Getenv("CONSENTRY_DB"), "./consentry.db"), "database file ($CONSENTRY_DB)")
	in := fs.String("in", "", "CSV of links to create, with a header row: source,topics[,campaign,label,message,locale,expires_at,max_scans] (- for stdin)")
	out := fs.String("out", "", "ZIP file to write")
	flags := addQRFlags(fs, "svg")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: consentry qr batch --in rows.csv --out codes.zip [--format svg] [--preset packaging] [--db FILE]")
		return 2
	}
	var src io.Reader = stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(stderr, "qr batch:", err)
			return 1
		}
		defer f.Close()
		src = f
	}
	rows, err := readLinkRows(src)
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	svc, closeStore, err := openServiceForCLI(*db, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	defer closeStore()
	opts := flags.options()
	if err := svc.checkQROptions(opts); err != nil {
		fmt.Fprintln(stderr, "qr batch:", cliMessage(err))
		return 1
	}
	// Validate every row before creating any link, then create them in
	// chunks (one transaction each).
	st, now := svc.Settings(), time.Now().UTC()
	if st.WANumber == "" {
		fmt.Fprintln(stderr, "qr batch:", errNoWANumber.Message)
		return 1
	}
	for i, r := range rows {
		if _, err := svc.linkRecord(st, r, now); err != nil {
			fmt.Fprintf(stderr, "qr batch: row %d: %s\n", i+2, cliMessage(err))
			return 1
		}
	}
	bar := newProgressBar(stderr, 2*len(rows))
	links := make([]store.Link, 0, len(rows))
	for start := 0; start < len(rows); start += maxBatch {
		chunk := rows[start:min(start+maxBatch, len(rows))]
		made, err := svc.createLinks(chunk, nil)
		if err != nil {
			fmt.Fprintln(stderr, "\nqr batch:", cliMessage(err))
			return 1
		}
		links = append(links, made...)
		bar.set(len(links))
	}
	err = writeFileAtomic(*out, func(w io.Writer) error {
		return svc.writeBatchZip(w, links, opts, func(done int) { bar.set(len(rows) + done) })
	})
	bar.finish()
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", cliMessage(err))
		return 1
	}
	fmt.Fprintf(stderr, "wrote %s: %d links (%s … %s) and manifest.csv\n", *out, len(links), links[0].ID, links[len(links)-1].ID)
	return 0
}

// readLinkRows reads link requests from a CSV with a header row. Topics
// are separated by spaces, semicolons or |.
func readLinkRows(r io.Reader) ([]LinkRequest, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header row: %w", err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))] = i
	}
	for _, need := range []string{"source", "topics"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("the header row has no %q column (columns: source, topics, campaign, label, message, locale, expires_at, max_scans)", need)
		}
	}
	var rows []LinkRequest
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		req := LinkRequest{Source: get("source"), Campaign: get("campaign"), Label: get("label"),
			Message: get("message"), Locale: get("locale"),
			Topics: strings.FieldsFunc(get("topics"), func(r rune) bool { return r == ' ' || r == ';' || r == '|' || r == ',' })}
		if v := get("expires_at"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, fmt.Errorf("row %d: expires_at %q is not an RFC 3339 time", line, v)
			}
			req.ExpiresAt = &t
		}
		if v := get("max_scans"); v != "" {
			if req.MaxScans, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("row %d: max_scans %q is not a number", line, v)
			}
		}
		rows = append(rows, req)
	}
	if len(rows) == 0 {
		return nil, errors.New("the CSV has no rows")
	}
	return rows, nil
}

// openServiceForCLI opens an existing database for an offline tool. It
// keeps the stored settings: no flag or variable overrides them here.
func openServiceForCLI(path string, stderr io.Writer) (*Service, func(), error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("%w (start the server once with this --db to create it)", err)
	}
	cfg, err := ParseServeConfig([]string{"--db", path}, func(string) string { return "" }, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (stop the server first: the tool opens the file directly)", err)
	}
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), stderr)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, func() { st.Close() }, nil
}

// cliMessage turns an API error into one line for the terminal.
func cliMessage(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	msg := e.Message
	for _, f := range e.Fields {
		if !strings.Contains(msg, f.Reason) {
			msg += "; " + f.Field + " " + f.Reason
		}
	}
	return msg
}

// writeFileAtomic writes path through a temporary file and a rename, so a
// failed run leaves no half-written file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// progressBar draws "[#####.....]  50/100" on one terminal line.
type progressBar struct {
	w          io.Writer
	total, cur int
	drawn      int // last drawn width of the bar, to redraw only on change
}

const progressWidth = 30

func newProgressBar(w io.Writer, total int) *progressBar {
	p := &progressBar{w: w, total: max(total, 1), drawn: -1}
	p.set(0)
	return p
}

func (p *progressBar) set(n int) {
	p.cur = n
	filled := n * progressWidth / p.total
	if filled == p.drawn && n != p.total {
		return
	}
	p.drawn = filled
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%", strings.Repeat("#", filled), strings.Repeat(".", progressWidth-filled), n*100/p.total)
}

func (p *progressBar) finish() {
	p.set(p.total)
	fmt.Fprintln(p.w)
}
