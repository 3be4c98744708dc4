package capture

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/imports"
)

// While an import runs the process has a soft memory limit (unless the
// operator set one, which is left alone), and the previous limit is back
// once the last running import ends. An opt-out sent while the import is
// under way is answered without waiting for the import to end.
func TestImportHoldsMemoryLimitWhileRunning(t *testing.T) {
	importBatch = 50 // commits of imports.CommitBatches*50 rows: several before the pause
	defer func() { importBatch = imports.BatchDefault }()
	for _, c := range []struct {
		name     string
		operator int64 // the limit set before the import
	}{
		{"no limit set", math.MaxInt64},
		{"operator's limit", 3 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(c.operator))
			a := fndNewApp(t)
			fndServer(t, a)
			pr, pw := io.Pipe()
			// Posted from another goroutine, which must not stop the test:
			// what it got is checked here.
			type answer struct {
				status int
				res    ImportResult
				err    error
			}
			done := make(chan answer, 1)
			go func() {
				var an answer
				defer func() { done <- an }()
				req, err := http.NewRequest("POST", a.base+"/v1/imports", pr)
				if an.err = err; err != nil {
					return
				}
				req.Header.Set("Content-Type", "text/csv")
				req.Header.Set("Authorization", "Bearer "+fndAdminKey)
				resp, err := http.DefaultClient.Do(req)
				if an.err = err; err != nil {
					return
				}
				defer resp.Body.Close()
				an.status = resp.StatusCode
				an.err = json.NewDecoder(resp.Body).Decode(&an.res)
			}()
			fmt.Fprintln(pw, "phone,type,topics,occurred_at,notice_text")
			// Enough rows to pass the client's and server's buffers.
			const rows = 3000
			for i := 1; i <= rows; i++ {
				fmt.Fprintf(pw, "%s,opt_in,marketing,2024-05-01T10:00:00Z,%q\n", fndPhone(i), fndNotice)
			}
			// The import is under way, waiting for more of the body.
			deadline := time.Now().Add(10 * time.Second)
			for len(impHistory(t, a, fndPhone(2*imports.CommitBatches*importBatch))) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the first commits of the import did not land")
				}
				time.Sleep(10 * time.Millisecond)
			}
			during := debug.SetMemoryLimit(-1)
			if c.operator != math.MaxInt64 && during != c.operator {
				t.Errorf("the operator's limit %d became %d during the import", c.operator, during)
			}
			if c.operator == math.MaxInt64 && (during < imports.MemoryBudget || during > imports.MemoryBudget+(1<<30)) {
				t.Errorf("limit during the import %d, want the live heap plus %d", during, imports.MemoryBudget)
			}
			start := time.Now()
			a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": fndPhone(rows + 1)}).must(t, 201)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("an opt-out during the import took %v", took)
			}
			pw.Close()
			if an := <-done; an.err != nil || an.status != 200 || an.res.Accepted != rows {
				t.Fatalf("import: status %d, accepted %d of %d, %v", an.status, an.res.Accepted, rows, an.err)
			}
			if after := debug.SetMemoryLimit(-1); after != c.operator {
				t.Errorf("limit after the import %d, want %d back", after, c.operator)
			}
		})
	}
}

// An import commit ends early, at a prepared batch's end, when another
// write is waiting: opt-outs sent throughout an import land between rows
// of one commit group, and the import still records every row once, in
// file order, with its refs (a re-sent file is skipped whole).
func TestImportCommitMakesWayForOtherWrites(t *testing.T) {
	importBatch = 5 // groups of imports.CommitBatches*5 rows
	defer func() { importBatch = imports.BatchDefault }()
	a := fndNewApp(t)
	fndServer(t, a)
	const rows = 400
	var csv strings.Builder
	csv.WriteString("phone,type,topics,occurred_at,notice_text,ref\n")
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&csv, "%s,opt_in,marketing,2024-05-01T10:00:00Z,%q,ref-%d\n", fndPhone(i), fndNotice, i)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := sent.Add(1)
				if r := a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": fndPhone(10_000 + int(n))}); r.status != 201 {
					t.Errorf("an opt-out during the import: status %d", r.status)
					return
				}
			}
		}()
	}
	res := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
	close(stop)
	wg.Wait()
	if res.Accepted != rows || res.Skipped != 0 {
		t.Fatalf("accepted %d skipped %d, want %d 0", res.Accepted, res.Skipped, rows)
	}
	seqs := make([]int, rows)
	for i := range rows {
		h := impHistory(t, a, fndPhone(i+1))
		if len(h) != 1 {
			t.Fatalf("row %d: %d events", i+1, len(h))
		}
		seqs[i] = int(h[0]["seq"].(float64))
		if i > 0 && seqs[i] <= seqs[i-1] {
			t.Fatalf("row %d has seq %d after row %d's %d: not in file order", i+1, seqs[i], i, seqs[i-1])
		}
	}
	// Rows of one group follow one another unless the commit made way.
	group := imports.CommitBatches * importBatch
	madeWay := 0
	for i := 1; i < rows; i++ {
		if i%group != 0 && seqs[i] != seqs[i-1]+1 {
			if i%importBatch != 0 {
				t.Fatalf("a write landed between rows %d and %d, inside a prepared batch", i, i+1)
			}
			madeWay++
		}
	}
	if madeWay == 0 {
		t.Errorf("no opt-out (of %d sent during the import) landed inside a commit group", sent.Load())
	}
	again := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
	if again.Accepted != 0 || again.Skipped != rows {
		t.Fatalf("again: accepted %d skipped %d", again.Accepted, again.Skipped)
	}
}
