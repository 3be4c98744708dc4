// Package imports reads consent records sent in bulk (CSV or NDJSON,
// streamed, with limits per line and on idleness) and runs them through
// the import pipeline: one reader, a preparing worker per core, commits in
// the order the rows were read, under a soft memory limit. What a row
// becomes and how it is written are the caller's (capture's Service):
// the pipeline knows rows, row faults and counts, not the ledger.
package imports

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/consentry/consentry/capture/ledger"
)

// Import limits.
const (
	// BatchDefault is how many rows are read and prepared together (one
	// worker's job).
	BatchDefault = 1000
	// CommitBatches is how many prepared batches share one ledger
	// transaction. Each commit rewrites the trees' branch pages and syncs
	// twice, so the write goroutine's CPU per row falls with the commit's
	// size: about 49 µs at 1,000 rows, 29 at 4,000, 27 at 8,000
	// (BenchmarkImport's profile). The commit's dirty pages are held in
	// memory until it is written, so its memory grows with it: 4,000
	// rows is most of the gain for half the memory of 8,000.
	CommitBatches = 4
	// MaxErrors is how many row errors an answer lists; the counts cover
	// all of them.
	MaxErrors = 1000
	// MaxLine bounds one NDJSON line or CSV record.
	MaxLine = 64 << 10
	// ClockSkew is how far in the future an occurred_at may be.
	ClockSkew = 5 * time.Minute
	// Idle is how long an import body may go without sending a byte; the
	// server's read timeout covers whole requests, which an import of
	// millions of rows outlasts.
	Idle = 30 * time.Second
)

// MemoryBudget is how far the process's memory may rise above the live
// heap it had when the first of the running imports began: a soft limit
// (runtime/debug.SetMemoryLimit) held while imports run. `consentry serve`
// runs with GOGC=400, so the heap grows to five times what is live before
// a collection: an import's live heap (the commit's dirty pages, the
// batches in flight) is 60-140 MiB, and five times that is memory that
// swings with when the collector happens to run. Under the limit the
// collector runs as often as it must to stay below it, so the memory is
// flat whatever the number of rows. The budget is a CPU trade: over a
// 1,000,000-row import, 160 MiB took 334 collections and 71 server
// CPU-seconds, 192 MiB 230 and 68, 224 MiB 197 and 59 (and the flattest
// band, 241-260 MiB). An operator's own GOMEMLIMIT is left as it is.
const MemoryBudget = 224 << 20

var memory struct {
	sync.Mutex
	running int
	prev    int64 // the limit before the first running import
}

// HoldMemory sets the imports' soft memory limit (unless one is set
// already) and returns what puts the previous one back once the last
// running import ends.
func HoldMemory() (release func()) {
	memory.Lock()
	defer memory.Unlock()
	if memory.running == 0 {
		memory.prev = debug.SetMemoryLimit(-1)
		if memory.prev == math.MaxInt64 {
			sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			metrics.Read(sample)
			live := int64(0)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live = int64(sample[0].Value.Uint64())
			}
			debug.SetMemoryLimit(live + MemoryBudget)
		}
	}
	memory.running++
	return func() {
		memory.Lock()
		defer memory.Unlock()
		if memory.running--; memory.running == 0 {
			debug.SetMemoryLimit(memory.prev)
		}
	}
}

// Row is one record of an import, as NDJSON spells it; CSV columns carry
// the same names (evidence columns without the "evidence." prefix).
type Row struct {
	Phone         string          `json:"phone"`
	UserID        string          `json:"user_id"`
	Type          string          `json:"type"`
	Topics        []string        `json:"topics"`
	Source        string          `json:"source"`
	Campaign      string          `json:"campaign"`
	OccurredAt    string          `json:"occurred_at"`
	NoticeText    string          `json:"notice_text"`
	NoticeVersion string          `json:"notice_version"`
	NoticeLocale  string          `json:"notice_locale"`
	Reason        string          `json:"reason"`
	Evidence      ledger.Evidence `json:"evidence"`
	Ref           string          `json:"ref"`
}

// Columns are the CSV columns an import understands.
var Columns = []string{"phone", "user_id", "type", "topics", "source", "campaign", "occurred_at",
	"notice_text", "notice_version", "notice_locale", "reason", "ref",
	"page_url", "ip", "user_agent", "staff_id", "link_code"}

// RowError names one fault of one row. Row counts data records from 1 (a
// CSV header row is not counted).
type RowError struct {
	Row    int    `json:"row"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Result is the answer to an import.
type Result struct {
	ImportID string `json:"import_id"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	// Skipped counts rows whose ref an earlier row (of this import or an
	// earlier one) already recorded.
	Skipped int        `json:"skipped"`
	Errors  []RowError `json:"errors"`
	// Superseded counts accepted opt-ins and opt-outs kept as history only
	// because the contact had a later decision on those topics.
	Superseded int `json:"superseded"`
}

// BadBody is a fault of the body as a whole (a CSV header, a record too
// long to read): the caller answers it as invalid input.
type BadBody struct {
	Message string
	Fields  []Fault // nil unless a header names them
}

// Fault names one field (a CSV column) of a bad body.
type Fault struct {
	Field, Reason string
}

func (e *BadBody) Error() string { return e.Message }
