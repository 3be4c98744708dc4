// Package csvsafe writes CSV that a spreadsheet opens as data: a cell
// that would run as a formula is neutralised. Every CSV Consentry writes
// (ledger exports, QR batch manifests, the console's statistics) goes
// through it.
package csvsafe

import (
	"encoding/csv"
	"io"
	"strings"
)

// Cell keeps a spreadsheet from running a cell as a formula (CSV
// injection, as OWASP describes it): a cell that begins with = + - @ tab
// or carriage return gets a leading single quote, which spreadsheets read
// as "this is text". A phone number in E.164 (+ and digits only) is left
// as written: it cannot hold a formula, and a quote in front would make
// every number unreadable to people and unmatchable by tools. Every CSV
// the service writes goes through Cell (exports, batch manifests, the
// console's statistics).
func Cell(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) || isE164(v) {
		return v
	}
	return "'" + v
}

// isE164 reports a value that is only a plus and 7 to 15 digits.
func isE164(v string) bool {
	if len(v) < 8 || len(v) > 16 || v[0] != '+' || v[1] == '0' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// Writer is a csv.Writer whose Write puts every cell through Cell.
type Writer struct {
	*csv.Writer
	row []string
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{Writer: csv.NewWriter(w)} }

// Write writes one row, each cell neutralised.
func (w *Writer) Write(cells []string) error {
	w.row = w.row[:0]
	for _, c := range cells {
		w.row = append(w.row, Cell(c))
	}
	return w.Writer.Write(w.row)
}
