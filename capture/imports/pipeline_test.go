package imports

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// phonePreparer keeps a row's phone, refusing rows typed "bad".
type phonePreparer struct{}

func (phonePreparer) Prepare(row Row, n int, _ string) (string, []RowError) {
	if row.Type == "bad" {
		return "", []RowError{{Row: n, Field: "type", Reason: "bad"}}
	}
	return row.Phone, nil
}

// ndjsonRows is n rows whose phones are their numbers; every seventh is bad.
func ndjsonRows(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		typ := "opt_in"
		if i%7 == 0 {
			typ = "bad"
		}
		fmt.Fprintf(&b, `{"phone":"%d","type":%q}`+"\n", i, typ)
	}
	return b.String()
}

// The good rows are committed once each, in the order they were read,
// however the workers interleave and however often a commit takes only
// part of its group; the faults come back in row order.
func TestPipelineCommitsInReadOrder(t *testing.T) {
	const rows = 1000
	var committed []string
	commits := 0
	p := Pipeline[string]{
		Batch:       3,
		NewPreparer: func() Preparer[string] { return phonePreparer{} },
		Commit: func(group []string) (Counts, error) {
			commits++
			done := len(group)
			if commits%2 == 0 && done > 3 {
				done = 3 // as when another write waits: the rest goes in the next commit
			}
			committed = append(committed, group[:done]...)
			return Counts{Done: done, Accepted: done}, nil
		},
	}
	res, err := p.Run(strings.NewReader(ndjsonRows(rows)), false)
	if err != nil {
		t.Fatal(err)
	}
	bad := rows / 7
	if res.Accepted != rows-bad || res.Rejected != bad || len(res.Errors) != bad || !strings.HasPrefix(res.ImportID, "imp_") {
		t.Fatalf("%+v", res)
	}
	next := 1
	for _, phone := range committed {
		if next%7 == 0 {
			next++
		}
		if phone != fmt.Sprint(next) {
			t.Fatalf("committed %s where row %d was due", phone, next)
		}
		next++
	}
	for i, e := range res.Errors {
		if e.Row != 7*(i+1) {
			t.Fatalf("error %d is row %d", i, e.Row)
		}
	}
}

// A body that stops being readable keeps the rows before the fault and
// says at which row it stopped; a failed commit ends the import with its
// error.
func TestPipelineStops(t *testing.T) {
	collect := func(commitErr error) (*[]string, Pipeline[string]) {
		var got []string
		return &got, Pipeline[string]{
			Batch:       2,
			NewPreparer: func() Preparer[string] { return phonePreparer{} },
			Commit: func(group []string) (Counts, error) {
				if commitErr != nil {
					return Counts{}, commitErr
				}
				got = append(got, group...)
				return Counts{Done: len(group), Accepted: len(group)}, nil
			},
		}
	}
	got, p := collect(nil)
	body := "phone,type,occurred_at\n1,opt_in,x\n2,opt_in,x\n\"3," + strings.Repeat("y,", 200<<10)
	res, err := p.Run(strings.NewReader(body), true)
	var bad *BadBody
	want := "a CSV record is longer than 256 KiB (an unclosed quote?) at row 3; the 2 rows before it were recorded"
	if !errors.As(err, &bad) || !strings.HasPrefix(bad.Message, want) || res.Accepted != 2 || len(*got) != 2 {
		t.Fatalf("%+v %v %v", res, err, *got)
	}

	failed := errors.New("disk full")
	_, p = collect(failed)
	if res, err := p.Run(strings.NewReader(ndjsonRows(100)), false); !errors.Is(err, failed) || res.Accepted != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}
