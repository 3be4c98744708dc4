package capture

import (
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

// While an import runs the process has a soft memory limit (unless the
// operator set one, which is left alone), and the previous limit is back
// once the last running import ends. An opt-out sent while the import is
// under way is answered without waiting for the import to end.
func TestImportHoldsMemoryLimitWhileRunning(t *testing.T) {
	importBatch = 50 // commits of importCommitBatches*50 rows: several before the pause
	defer func() { importBatch = importBatchDefault }()
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
			done := make(chan ImportResult, 1)
			go func() { done <- impPost(t, a, "text/csv", pr, 200) }()
			fmt.Fprintln(pw, "phone,type,topics,occurred_at,notice_text")
			// Enough rows to pass the client's and server's buffers.
			const rows = 3000
			for i := 1; i <= rows; i++ {
				fmt.Fprintf(pw, "%s,opt_in,marketing,2024-05-01T10:00:00Z,%q\n", fndPhone(i), fndNotice)
			}
			// The import is under way, waiting for more of the body.
			deadline := time.Now().Add(10 * time.Second)
			for len(impHistory(t, a, fndPhone(2*importCommitBatches*importBatch))) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the first commits of the import did not land")
				}
				time.Sleep(10 * time.Millisecond)
			}
			during := debug.SetMemoryLimit(-1)
			if c.operator != math.MaxInt64 && during != c.operator {
				t.Errorf("the operator's limit %d became %d during the import", c.operator, during)
			}
			if c.operator == math.MaxInt64 && (during < importMemoryBudget || during > importMemoryBudget+(1<<30)) {
				t.Errorf("limit during the import %d, want the live heap plus %d", during, importMemoryBudget)
			}
			start := time.Now()
			a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": fndPhone(rows + 1)}).must(t, 201)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("an opt-out during the import took %v", took)
			}
			pw.Close()
			if res := <-done; res.Accepted != rows {
				t.Fatalf("accepted %d of %d", res.Accepted, rows)
			}
			if after := debug.SetMemoryLimit(-1); after != c.operator {
				t.Errorf("limit after the import %d, want %d back", after, c.operator)
			}
		})
	}
}
