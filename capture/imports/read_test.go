package imports

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
)

// readAll reads every row of a body, the row faults in place of rows.
func readAll(t *testing.T, body string, csvFormat bool) ([]Row, []RowError, error) {
	t.Helper()
	src, err := NewSource(strings.NewReader(body), csvFormat)
	if err != nil {
		return nil, nil, err
	}
	var rows []Row
	var faults []RowError
	for {
		row, n, _, rowErr, err := src.Next()
		if errors.Is(err, io.EOF) {
			return rows, faults, nil
		}
		if err != nil {
			return rows, faults, err
		}
		if rowErr != nil {
			faults = append(faults, *rowErr)
			continue
		}
		if n != len(rows)+len(faults)+1 {
			t.Fatalf("row numbered %d after %d rows", n, len(rows)+len(faults))
		}
		rows = append(rows, row)
	}
}

func TestReadRows(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	cases := []struct {
		name   string
		body   string
		csv    bool
		rows   []Row
		faults []RowError
	}{
		{"ndjson, blank lines are not rows", `{"phone":"+5511988887777","type":"opt_out","occurred_at":"2024-01-01T00:00:00Z"}` + "\n\n" +
			`{"user_id":"US.1","type":"opt_in","topics":["a","b"],"evidence":{"ip":"198.51.100.7"}}` + "\n",
			false, []Row{{Phone: "+5511988887777", Type: "opt_out", OccurredAt: "2024-01-01T00:00:00Z"},
				{UserID: "US.1", Type: "opt_in", Topics: []string{"a", "b"}, Evidence: evidence("198.51.100.7")}}, nil},
		{"ndjson faults by row and field", `{"phone":1}` + "\n" + `{"colour":"red"}` + "\n" + `[1]` + "\n" + `{} {}` + "\n" + `{"phone":"` + long + `"}` + "\n",
			false, nil, []RowError{
				{Row: 1, Field: "phone", Reason: "must be a string, not number"},
				{Row: 2, Field: "colour", Reason: "unknown field"},
				{Row: 3, Reason: "must be an object, not array"},
				{Row: 4, Reason: "more than one JSON value on the line"},
				{Row: 5, Reason: "line longer than 64 KiB"}}},
		{"csv with a BOM, semicolons, topics split on | and spaces, evidence columns", "\ufeffPhone;Type;Topics;Occurred_At;IP\n 011 ;opt_in;a|b c;2024-01-01T00:00:00Z;198.51.100.7\n",
			true, []Row{{Phone: "011", Type: "opt_in", Topics: []string{"a", "b", "c"}, OccurredAt: "2024-01-01T00:00:00Z", Evidence: evidence("198.51.100.7")}}, nil},
		{"csv faults by row", "phone,type,occurred_at\n1,opt_in,x,extra\n2,\"opt\"in,x\n3,opt_out,x,\n4,opt_in," + long + "\n",
			true, []Row{{Phone: "3", Type: "opt_out", OccurredAt: "x"}}, []RowError{
				{Row: 1, Reason: "more cells than header columns"},
				{Row: 2, Reason: `malformed CSV: extraneous or missing " in quoted-field`},
				{Row: 4, Reason: "record longer than 64 KiB"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, faults, err := readAll(t, c.body, c.csv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rows, c.rows) {
				t.Errorf("rows %+v, want %+v", rows, c.rows)
			}
			if !reflect.DeepEqual(faults, c.faults) {
				t.Errorf("faults %+v, want %+v", faults, c.faults)
			}
		})
	}
}

func evidence(ip string) ledger.Evidence { return ledger.Evidence{IP: ip} }

// A body that cannot be read as rows is a *BadBody: the header's faults
// name the columns; an unclosed quote ends the reading.
func TestReadBadBody(t *testing.T) {
	cases := []struct {
		name, body string
		want       BadBody
	}{
		{"empty", "", BadBody{Message: "the CSV has no readable header row"}},
		{"header", "colour,topics\n", BadBody{Message: "the CSV header has faults; columns: " + strings.Join(Columns, ", "), Fields: []Fault{
			{"colour", "unknown column"}, {"phone", "the header needs a phone (or user_id) column"},
			{"type", "the header needs this column"}, {"occurred_at", "the header needs this column"}}}},
		{"unclosed quote", "phone,type,occurred_at\n1,opt_in,x\n\"2," + strings.Repeat("y,", 200<<10) + "\n",
			BadBody{Message: "a CSV record is longer than 256 KiB (an unclosed quote?)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, _, err := readAll(t, c.body, true)
			var bad *BadBody
			if !errors.As(err, &bad) || !reflect.DeepEqual(*bad, c.want) {
				t.Fatalf("err %v, want %+v", err, c.want)
			}
			if c.name == "unclosed quote" && len(rows) != 1 {
				t.Errorf("%d rows read before the fault, want 1", len(rows))
			}
		})
	}
}
