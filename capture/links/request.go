package links

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/store"
)

// Request creates a link (POST /v1/links, receipts, batches, a row of a
// batch CSV).
type Request struct {
	Source   string `json:"source" validate:"required,max=32"`
	Campaign string `json:"campaign" validate:"omitempty,max=64,safetext"`
	Label    string `json:"label" validate:"omitempty,max=200,safetext"`
	// Message is the text prefilled in WhatsApp. It may use {business},
	// {topics} and {code}; without {code} the code is appended. Empty means
	// the locale's default message.
	Message   string     `json:"message" validate:"omitempty,max=500,safetext"`
	Locale    string     `json:"locale" validate:"omitempty,oneof=pt-BR en es"`
	Topics    []string   `json:"topics" validate:"required,min=1,max=20"`
	ExpiresAt *time.Time `json:"expires_at"`
	MaxScans  int        `json:"max_scans" validate:"min=0,max=1000000000"`

	// Number picks one of the settings' numbers (label or
	// phone_number_id) for wa_url; empty is the default number.
	Number string `json:"number" validate:"omitempty,max=40"`
	// Ref is the caller's own reference for the link (a batch row, a
	// product SKU): a request with a ref already used returns that link
	// instead of making another, so reruns give the same codes.
	Ref string `json:"ref" validate:"omitempty,max=100,safetext"`
}

// ReadRows reads link requests from a CSV with a header row, as
// spreadsheets save it: comma- or semicolon-separated (Excel in Brazil and
// much of Europe writes ";"), with or without a UTF-8 byte order mark, or
// with Excel's "sep=;" first line. Topics are separated by spaces, |, or
// whichever of , and ; is not the column separator.
func ReadRows(r io.Reader) ([]Request, error) {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\ufeff")) {
		br.Discard(3)
	}
	first, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the header row: %w", err)
	}
	comma := ','
	if sep, ok := strings.CutPrefix(strings.TrimSpace(first), "sep="); ok && len(sep) == 1 {
		comma = rune(sep[0])
		if first, err = br.ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the header row: %w", err)
		}
	} else if headerCount(first, ';') > headerCount(first, ',') {
		comma = ';'
	}
	cr := csv.NewReader(io.MultiReader(strings.NewReader(first), br))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header row: %w", err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[strings.ToLower(strings.TrimSpace(name))] = i
	}
	for _, need := range []string{"source", "topics"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("the header row has no %q column (columns: source, topics, ref, campaign, label, message, locale, expires_at, max_scans)", need)
		}
	}
	var rows []Request
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
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue // spreadsheets leave empty rows at the end
		}
		req := Request{Source: get("source"), Campaign: get("campaign"), Label: get("label"),
			Message: get("message"), Locale: get("locale"), Ref: get("ref"),
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

// headerCount counts sep outside double quotes in a header line.
func headerCount(line string, sep byte) int {
	n, quoted := 0, false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				n++
			}
		}
	}
	return n
}

// ZipNames names the files of a batch ZIP after what the print team
// knows them by: the row's ref, else its label, else the code. Names are
// made safe for every file system (letters, digits, - _ . only; no
// Windows device names) and unique (a repeat gets its code appended).
type ZipNames struct{ used map[string]bool }

// NewZipNames starts the names of one ZIP (manifest.csv is taken).
func NewZipNames() *ZipNames { return &ZipNames{used: map[string]bool{"manifest.csv": true}} }

// Name is the file name of l's image with extension ext.
func (z *ZipNames) Name(l store.Link, ext string) string {
	base := safeFileName(l.Ref)
	if base == "" {
		base = safeFileName(l.Label)
	}
	if base == "" {
		base = l.Code
	}
	name := base + "." + ext
	if z.used[strings.ToLower(name)] {
		name = base + "-" + l.Code + "." + ext
	}
	z.used[strings.ToLower(name)] = true
	return name
}

const maxFileBase = 80

// windowsDevices are names Windows refuses as files, whatever the extension.
var windowsDevices = map[string]bool{"con": true, "prn": true, "aux": true, "nul": true,
	"com1": true, "com2": true, "com3": true, "com4": true, "com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true, "lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true}

// safeFileName keeps letters (any script), digits, '-', '_' and '.', turns
// every other run of characters into one '_' and trims the result.
func safeFileName(v string) string {
	var b strings.Builder
	under := false
	for _, r := range v {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.':
			b.WriteRune(r)
			under = false
		case !under:
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.Trim(b.String(), "._-")
	if runes := []rune(out); len(runes) > maxFileBase {
		out = strings.TrimRight(string(runes[:maxFileBase]), "._-")
	}
	if windowsDevices[strings.ToLower(out)] {
		out = "_" + out
	}
	return out
}
