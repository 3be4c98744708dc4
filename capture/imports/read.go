package imports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Source reads rows from a body.
type Source interface {
	// Next returns the next row and its number; io.EOF at the end. A row
	// that cannot be read at all is returned with rowErr set.
	Next() (row Row, n int, evidencePrefix string, rowErr *RowError, err error)
}

// NewSource reads r as CSV when csvFormat, as NDJSON otherwise. A CSV's
// header is read at once: its faults are a *BadBody.
func NewSource(r io.Reader, csvFormat bool) (Source, error) {
	if csvFormat {
		return newCSVSource(r)
	}
	return &ndjsonSource{r: bufio.NewReaderSize(r, 64<<10)}, nil
}

// ndjsonSource reads one JSON object per line.
type ndjsonSource struct {
	r    *bufio.Reader
	line int
	buf  []byte
}

func (f *ndjsonSource) Next() (Row, int, string, *RowError, error) {
	for {
		f.buf = f.buf[:0]
		tooLong := false
		for {
			chunk, err := f.r.ReadSlice('\n')
			if len(f.buf)+len(chunk) > MaxLine {
				tooLong = true
			} else {
				f.buf = append(f.buf, chunk...)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return Row{}, 0, "", nil, err
			}
			if errors.Is(err, io.EOF) && len(f.buf) == 0 && !tooLong {
				return Row{}, 0, "", nil, io.EOF
			}
			break
		}
		f.line++
		if tooLong {
			return Row{}, f.line, "", &RowError{Row: f.line, Reason: "line longer than 64 KiB"}, nil
		}
		line := bytes.TrimSpace(f.buf)
		if len(line) == 0 {
			f.line-- // blank lines (a trailing newline) are not rows
			continue
		}
		var row Row
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			return row, f.line, "", &RowError{Row: f.line, Field: jsonFaultField(err), Reason: jsonFaultReason(err)}, nil
		}
		if dec.More() {
			return row, f.line, "", &RowError{Row: f.line, Reason: "more than one JSON value on the line"}, nil
		}
		return row, f.line, "evidence.", nil, nil
	}
}

func jsonFaultField(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return typeErr.Field
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return strings.Trim(name, `"`)
	}
	return ""
}

func jsonFaultReason(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "must be " + JSONKind(typeErr.Type) + ", not " + typeErr.Value
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return "unknown field"
	}
	return "not a JSON object: " + err.Error()
}

// JSONKind names a Go type as JSON writes it, for "must be an array, not
// string" faults (the API's own JSON decoding names them the same way).
func JSONKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// csvSource reads RFC 4180 CSV with a header row (comma or semicolon
// separated, with or without a UTF-8 BOM).
type csvSource struct {
	r     *csv.Reader
	bound *recordBound
	col   []string // column name of each position
	row   int
}

// maxCSVRecord bounds what the CSV reader may pull for one record: it
// keeps a whole record in memory, and an unclosed quote would make the
// rest of the body one record.
const maxCSVRecord = 256 << 10

var errCSVRecordTooLong = &BadBody{Message: "a CSV record is longer than 256 KiB (an unclosed quote?)"}

// recordBound fails a read once more than max bytes were pulled since the
// last record was completed (reset by csvSource.Next).
type recordBound struct {
	r      io.Reader
	n, max int
}

func (b *recordBound) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, errCSVRecordTooLong
	}
	n, err := b.r.Read(p)
	b.n += n
	return n, err
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	bound := &recordBound{r: r, max: maxCSVRecord}
	br := bufio.NewReaderSize(bound, 64<<10)
	head, _ := br.Peek(4096)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	cr := csv.NewReader(br)
	if bytes.Count(head, []byte(";")) > bytes.Count(head, []byte(",")) {
		cr.Comma = ';'
	}
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, &BadBody{Message: "the CSV has no readable header row"}
	}
	f := &csvSource{r: cr, bound: bound}
	bound.n = 0
	var unknown []Fault
	seen := map[string]bool{}
	for _, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		if !slices.Contains(Columns, name) {
			unknown = append(unknown, Fault{Field: name, Reason: "unknown column"})
		}
		seen[name] = true
		f.col = append(f.col, name)
	}
	if !seen["phone"] && !seen["user_id"] {
		unknown = append(unknown, Fault{Field: "phone", Reason: "the header needs a phone (or user_id) column"})
	}
	for _, need := range []string{"type", "occurred_at"} {
		if !seen[need] {
			unknown = append(unknown, Fault{Field: need, Reason: "the header needs this column"})
		}
	}
	if len(unknown) > 0 {
		return nil, &BadBody{Message: "the CSV header has faults; columns: " + strings.Join(Columns, ", "), Fields: unknown}
	}
	return f, nil
}

func (f *csvSource) Next() (Row, int, string, *RowError, error) {
	rec, err := f.r.Read()
	if errors.Is(err, io.EOF) {
		return Row{}, 0, "", nil, io.EOF
	}
	f.bound.n = 0
	f.row++
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return Row{}, f.row, "", &RowError{Row: f.row, Reason: "malformed CSV: " + perr.Err.Error()}, nil
	}
	if err != nil {
		return Row{}, 0, "", nil, err
	}
	var row Row
	size := 0
	for i, v := range rec {
		size += len(v)
		if i >= len(f.col) {
			if strings.TrimSpace(v) != "" {
				return row, f.row, "", &RowError{Row: f.row, Reason: "more cells than header columns"}, nil
			}
			continue
		}
		v = strings.TrimSpace(v) // copies nothing; the strings are fresh per record
		switch f.col[i] {
		case "phone":
			row.Phone = v
		case "user_id":
			row.UserID = v
		case "type":
			row.Type = v
		case "topics":
			row.Topics = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '|' })
		case "source":
			row.Source = v
		case "campaign":
			row.Campaign = v
		case "occurred_at":
			row.OccurredAt = v
		case "notice_text":
			row.NoticeText = v
		case "notice_version":
			row.NoticeVersion = v
		case "notice_locale":
			row.NoticeLocale = v
		case "reason":
			row.Reason = v
		case "ref":
			row.Ref = v
		case "page_url":
			row.Evidence.PageURL = v
		case "ip":
			row.Evidence.IP = v
		case "user_agent":
			row.Evidence.UserAgent = v
		case "staff_id":
			row.Evidence.StaffID = v
		case "link_code":
			row.Evidence.LinkCode = v
		}
	}
	if size > MaxLine {
		return Row{}, f.row, "", &RowError{Row: f.row, Reason: "record longer than 64 KiB"}, nil
	}
	return row, f.row, "", nil, nil
}

// IdleReader extends the connection's read deadline while bytes keep
// arriving, so a long import is limited by idleness (Idle), not duration.
type IdleReader struct {
	R    io.Reader
	Conn net.Conn
	last time.Time
}

func (d *IdleReader) Read(p []byte) (int, error) {
	if now := time.Now(); d.Conn != nil && now.Sub(d.last) > time.Second {
		_ = d.Conn.SetReadDeadline(now.Add(Idle))
		d.last = now
	}
	return d.R.Read(p)
}
