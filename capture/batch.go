package capture

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/csvsafe"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
)

// maxBatch is the most links one POST /v1/qr/batch renders.
const maxBatch = 1000

// batchRequest is POST /v1/qr/batch: existing links by id, or rows of new
// links to create, rendered with one set of image options.
type batchRequest struct {
	Links  []string        `json:"links" validate:"max=1000,dive,max=40"`
	Rows   []links.Request `json:"rows" validate:"max=1000"`
	Format string          `json:"format" validate:"omitempty,max=10"`
	Preset string          `json:"preset" validate:"omitempty,max=20"`
	ECC    string          `json:"ecc" validate:"omitempty,max=1"`
	Margin int             `json:"margin"`
	Module int             `json:"module"`
	DPI    int             `json:"dpi"`
	ESCPOS string          `json:"escpos" validate:"omitempty,oneof=raster native"`
	// Init starts escpos files with ESC @ (printer reset); off by default.
	Init bool `json:"init"`
}

func (r batchRequest) options() qr.Options {
	return qr.Options{Format: qr.Format(strings.ToLower(r.Format)), Preset: strings.ToLower(r.Preset),
		ECC: strings.ToUpper(r.ECC), Margin: r.Margin, Module: r.Module, DPI: r.DPI, ESCPOSNative: r.ESCPOS == "native",
		ESCPOSInit: r.Init}
}

// checkQROptions renders a stand-in code first, so bad options are a 422
// before any link is created. Every code has the same length and
// alphabet, so the geometry of the stand-in is the geometry of all.
func (s *Service) checkQROptions(opts qr.Options) error {
	st := s.Settings()
	_, err := s.renderCodeQR(st, strings.Repeat("0", links.CodeLen), st.DefaultLocale, opts)
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
func (s *Service) writeBatchZip(w io.Writer, batch []store.Link, opts qr.Options, progress func(done int)) error {
	st := s.Settings()
	zw := zip.NewWriter(w)
	var manifest bytes.Buffer
	cw := csvsafe.NewWriter(&manifest)
	_ = cw.Write([]string{"id", "code", "url", "wa_url", "file", "source", "campaign", "label", "ref"})
	names := links.NewZipNames()
	for i, l := range batch {
		img, err := s.renderCodeQR(st, l.Code, l.Locale, opts)
		if err != nil {
			return err
		}
		name := names.Name(l, fileExt(opts.Format, img.contentType))
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
		_ = cw.Write([]string{l.ID, l.Code, links.URL(st.PublicURL, l.Code), waURL(st, l), name, l.Source,
			l.Campaign, l.Label, l.Ref})
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
	err := decodeRequest(c, &req, func() error {
		st, now := h.s.Settings(), time.Now()
		errs := make([]error, len(req.Rows))
		for i, r := range req.Rows {
			_, err := h.s.linkRecord(st, r, now)
			errs[i] = withFieldPrefix(err, fmt.Sprintf("rows[%d].", i))
		}
		return mergeErrors(errs...)
	})
	if err != nil {
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

// RunQR is `consentry qr`: one code to stdout or a file (--link ID or
// --code CODE), or `consentry qr batch`: links created from a CSV and
// written as a ZIP with manifest.csv. Offline it opens the database
// directly (--db or CONSENTRY_DB), which for a bbolt file works only while
// no server holds it; with --url it asks a running service (API key from --key or
// CONSENTRY_API_KEY, scope links).
func RunQR(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "batch" {
		return runQRBatch(args[1:], stdin, stderr)
	}
	fs := flag.NewFlagSet("qr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", firstNonEmpty(os.Getenv("CONSENTRY_DB"), "./consentry.db"), "database file or postgres:// URL ($CONSENTRY_DB)")
	server, key := addServerFlags(fs)
	linkID := fs.String("link", "", "link id (lnk_…)")
	code := fs.String("code", "", "link code")
	out := fs.String("out", "", "file to write (default stdout)")
	flags := addQRFlags(fs, "txt")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: consentry qr (--link ID | --code CODE) [--format txt|png|svg|pdf|escpos] [--preset P] [--out FILE] [--url URL]\n       consentry qr batch --in rows.csv --out codes.zip [--format svg] [--preset packaging] [--url URL]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*linkID == "") == (*code == "") || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var img []byte
	var addr string // the link's URL, to warn about a loopback one
	if *server != "" {
		ref := firstNonEmpty(*linkID, strings.TrimSpace(*code))
		var err error
		if img, addr, err = fetchQR(*server, *key, ref, flags); err != nil {
			fmt.Fprintln(stderr, "qr:", err)
			return 1
		}
	} else {
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
		rendered, err := svc.renderCodeQR(svc.Settings(), l.Code, l.Locale, flags.options())
		if err != nil {
			fmt.Fprintln(stderr, "qr:", cliMessage(err))
			return 1
		}
		img, addr = rendered.body, links.URL(svc.Settings().PublicURL, l.Code)
	}
	warnLoopback(stderr, addr)
	var err error
	if *out == "" {
		_, err = stdout.Write(img)
	} else {
		err = writeFileAtomic(*out, func(w io.Writer) error { _, err := w.Write(img); return err })
	}
	if err != nil {
		fmt.Fprintln(stderr, "qr:", err)
		return 1
	}
	if *out != "" {
		fmt.Fprintf(stderr, "wrote %s for %s\n", *out, addr)
	}
	return 0
}

// warnLoopback tells the print team that codes made with a loopback URL
// will not open on a customer's phone.
func warnLoopback(stderr io.Writer, linkURL string) {
	if i := strings.Index(linkURL, "/l/"); i > 0 {
		linkURL = linkURL[:i]
	}
	if w := LoopbackWarning(linkURL); w != "" {
		fmt.Fprintln(stderr, w)
	}
}

func addServerFlags(fs *flag.FlagSet) (server, key *string) {
	server = fs.String("url", "", "base URL of a running service, e.g. https://consent.example.com (default: open --db directly)")
	key = fs.String("key", os.Getenv("CONSENTRY_API_KEY"), "API key with scope links for --url ($CONSENTRY_API_KEY)")
	return server, key
}

type qrFlags struct {
	format, preset, ecc, escpos *string
	margin, module, dpi         *int
	init                        *bool
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
		init:   fs.Bool("init", false, "escpos: start with ESC @ (resets the printer; not for bytes inside a till's receipt)"),
	}
}

func (f qrFlags) request() batchRequest {
	return batchRequest{Format: *f.format, Preset: *f.preset, ECC: *f.ecc, Margin: *f.margin, Module: *f.module,
		DPI: *f.dpi, ESCPOS: *f.escpos, Init: *f.init}
}

func (f qrFlags) options() qr.Options { return f.request().options() }

// query is the flags as GET /v1/links/{id}/qr parameters.
func (f qrFlags) query() url.Values {
	q := url.Values{}
	q.Set("format", *f.format)
	for name, v := range map[string]string{"preset": *f.preset, "ecc": *f.ecc, "escpos": *f.escpos} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for name, v := range map[string]int{"margin": *f.margin, "module": *f.module, "dpi": *f.dpi} {
		if v != 0 {
			q.Set(name, strconv.Itoa(v))
		}
	}
	if *f.init {
		q.Set("init", "true")
	}
	return q
}

// cliClient talks to a running service; a large batch takes a while.
var cliClient = &http.Client{Timeout: 10 * time.Minute}

// callService sends a request with the API key and returns the answer's
// body, or the service's error message when it is not a success.
func callService(method, server, path, key string, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimRight(server, "/")+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if key == "" {
		return nil, nil, errors.New("no API key: set CONSENTRY_API_KEY (scope links) or pass --key")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cliClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			return nil, nil, fmt.Errorf("the service answered %d: %s", resp.StatusCode, cliMessage(env.Error))
		}
		return nil, nil, fmt.Errorf("the service answered %s", resp.Status)
	}
	return resp, b, nil
}

// fetchQR is `consentry qr --url`: GET /v1/links/{id or code}/qr.
func fetchQR(server, key, ref string, f qrFlags) (img []byte, addr string, err error) {
	resp, body, err := callService("GET", server, "/v1/links/"+url.PathEscape(ref)+"/qr?"+f.query().Encode(), key, nil)
	if err != nil {
		return nil, "", err
	}
	return body, resp.Header.Get("X-Consentry-Url"), nil
}

func runQRBatch(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("qr batch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", firstNonEmpty(os.Getenv("CONSENTRY_DB"), "./consentry.db"), "database file or postgres:// URL ($CONSENTRY_DB)")
	server, key := addServerFlags(fs)
	in := fs.String("in", "", "CSV of links to create, with a header row: source,topics[,ref,campaign,label,message,locale,expires_at,max_scans]; comma or semicolon separated (- for stdin)")
	out := fs.String("out", "", "ZIP file to write")
	flags := addQRFlags(fs, "svg")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: consentry qr batch --in rows.csv --out codes.zip [--format svg] [--preset packaging] [--db FILE | --url URL]")
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
	rows, err := links.ReadRows(src)
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	if *server != "" {
		return qrBatchOnline(*server, *key, rows, flags, *out, stderr)
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
	warnLoopback(stderr, svc.Settings().PublicURL)
	// Every row is checked, then all links are made in one transaction:
	// a batch with a bad row makes none. Rows whose ref was used before
	// get their earlier link.
	bar := newProgressBar(stderr, 2*len(rows))
	links, existed, err := svc.createLinksRef(rows, nil, func(i int) string { return fmt.Sprintf("row %d: ", i+2) })
	if err != nil {
		fmt.Fprintln(stderr, "\nqr batch:", cliMessage(err))
		return 1
	}
	bar.set(len(rows))
	err = writeFileAtomic(*out, func(w io.Writer) error {
		return svc.writeBatchZip(w, links, opts, func(done int) { bar.set(len(rows) + done) })
	})
	bar.finish()
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", cliMessage(err))
		return 1
	}
	reused := 0
	for _, e := range existed {
		if e {
			reused++
		}
	}
	fmt.Fprintf(stderr, "wrote %s: %d links (%d new, %d from earlier runs by ref) and manifest.csv\n", *out, len(links), len(links)-reused, reused)
	return 0
}

// qrBatchOnline is `consentry qr batch --url`: the rows go to POST
// /v1/qr/batch in one request, so the service makes all links or none.
func qrBatchOnline(server, key string, rows []links.Request, flags qrFlags, out string, stderr io.Writer) int {
	if len(rows) > maxBatch {
		fmt.Fprintf(stderr, "qr batch: %d rows; a running service takes at most %d per batch (all or nothing): split the file, with refs so reruns are safe\n", len(rows), maxBatch)
		return 1
	}
	req := flags.request()
	req.Rows = rows
	body, err := json.Marshal(req)
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	fmt.Fprintf(stderr, "sending %d rows to %s …\n", len(rows), server)
	_, zipBytes, err := callService("POST", server, "/v1/qr/batch", key, body)
	if err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		fmt.Fprintln(stderr, "qr batch: the service did not answer with a ZIP:", err)
		return 1
	}
	if err := writeFileAtomic(out, func(w io.Writer) error { _, err := w.Write(zipBytes); return err }); err != nil {
		fmt.Fprintln(stderr, "qr batch:", err)
		return 1
	}
	if u := manifestFirstURL(zr); u != "" {
		warnLoopback(stderr, u)
	}
	fmt.Fprintf(stderr, "wrote %s: %d links and manifest.csv\n", out, len(zr.File)-1)
	return 0
}

// manifestFirstURL reads the url of the first row of a batch's manifest.
func manifestFirstURL(zr *zip.Reader) string {
	f, err := zr.Open("manifest.csv")
	if err != nil {
		return ""
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 {
		return ""
	}
	for i, h := range recs[0] {
		if h == "url" && i < len(recs[1]) {
			return recs[1][i]
		}
	}
	return ""
}

// openServiceForCLI opens an existing database for an offline tool. It
// keeps the stored settings: no flag or variable overrides them here.
func openServiceForCLI(path string, stderr io.Writer) (*Service, func(), error) {
	if !backend.IsURL(path) {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("%w (start the server once with this --db to create it)", err)
		}
	}
	cfg, err := ParseServeConfig([]string{"--db", path}, func(string) string { return "" }, io.Discard)
	if err != nil {
		return nil, nil, err
	}
	st, err := backend.Open(path)
	if err != nil {
		if backend.IsURL(path) {
			return nil, nil, err
		}
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
