package capture

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
)

// Import limits.
const (
	// importBatchDefault is how many rows are read and prepared together
	// (one worker's job).
	importBatchDefault = 1000
	// importCommitBatches is how many prepared batches share one ledger
	// transaction. Each commit rewrites the trees' branch pages and syncs
	// twice, so the write goroutine's CPU per row falls with the commit's
	// size: about 49 µs at 1,000 rows, 29 at 4,000, 27 at 8,000
	// (BenchmarkImport's profile). The commit's dirty pages are held in
	// memory until it is written, so its memory grows with it: 4,000
	// rows is most of the gain for half the memory of 8,000.
	importCommitBatches = 4
	// maxImportErrors is how many row errors an answer lists; the counts
	// cover all of them.
	maxImportErrors = 1000
	// maxImportLine bounds one NDJSON line or CSV record.
	maxImportLine = 64 << 10
	// importClockSkew is how far in the future an occurred_at may be.
	importClockSkew = 5 * time.Minute
	// importIdle is how long an import body may go without sending a
	// byte; the server's read timeout covers whole requests, which an
	// import of millions of rows outlasts.
	importIdle = 30 * time.Second
)

// importMemoryBudget is how far the process's memory may rise above the
// live heap it had when the first of the running imports began: a soft
// limit (runtime/debug.SetMemoryLimit) held while imports run. `consentry
// serve` runs with GOGC=400, so the heap grows to five times what is live
// before a collection: an import's live heap (the commit's dirty pages,
// the batches in flight) is 60-140 MiB, and five times that is memory
// that swings with when the collector happens to run. Under the limit the
// collector runs as often as it must to stay below it, so the memory is
// flat whatever the number of rows. The budget is a CPU trade: over a
// 1,000,000-row import, 160 MiB took 334 collections and 71 server
// CPU-seconds, 192 MiB 230 and 68, 224 MiB 197 and 59 (and the flattest
// band, 241-260 MiB). An operator's own GOMEMLIMIT is left as it is.
const importMemoryBudget = 224 << 20

var importMemory struct {
	sync.Mutex
	running int
	prev    int64 // the limit before the first running import
}

// holdImportMemory sets the imports' soft memory limit (unless one is set
// already) and returns what puts the previous one back once the last
// running import ends.
func holdImportMemory() (release func()) {
	importMemory.Lock()
	defer importMemory.Unlock()
	if importMemory.running == 0 {
		importMemory.prev = debug.SetMemoryLimit(-1)
		if importMemory.prev == math.MaxInt64 {
			sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			metrics.Read(sample)
			live := int64(0)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live = int64(sample[0].Value.Uint64())
			}
			debug.SetMemoryLimit(live + importMemoryBudget)
		}
	}
	importMemory.running++
	return func() {
		importMemory.Lock()
		defer importMemory.Unlock()
		if importMemory.running--; importMemory.running == 0 {
			debug.SetMemoryLimit(importMemory.prev)
		}
	}
}

// importBatch is importBatchDefault; tests make it small to cross batch
// boundaries with few rows.
var importBatch = importBatchDefault

// importRow is one record of an import, as NDJSON spells it; CSV columns
// carry the same names (evidence columns without the "evidence." prefix).
type importRow struct {
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

// importColumns are the CSV columns an import understands.
var importColumns = []string{"phone", "user_id", "type", "topics", "source", "campaign", "occurred_at",
	"notice_text", "notice_version", "notice_locale", "reason", "ref",
	"page_url", "ip", "user_agent", "staff_id", "link_code"}

var evidenceColumns = map[string]bool{"page_url": true, "ip": true, "user_agent": true, "staff_id": true, "link_code": true}

// ImportError names one fault of one row. Row counts data records from 1
// (a CSV header row is not counted).
type ImportError struct {
	Row    int    `json:"row"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ImportResult is the answer to an import.
type ImportResult struct {
	ImportID string `json:"import_id"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	// Skipped counts rows whose ref an earlier row (of this import or an
	// earlier one) already recorded.
	Skipped int           `json:"skipped"`
	Errors  []ImportError `json:"errors"`
	// Superseded counts accepted opt-ins and opt-outs kept as history only
	// because the contact had a later decision on those topics.
	Superseded int `json:"superseded"`
}

// importEntry is a validated row, prepared outside the write transaction.
type importEntry struct {
	row     int
	typ     string
	subject []byte // the number's, or the BSUID's own when there is no number
	// phoneSubject and userKey name the contact as the row does; with a
	// userKey the subject is settled in the write, as Record settles it.
	phoneSubject []byte
	userKey      []byte
	bodyFields   *ledger.Body // the body's fields, kept only with a userKey
	topics       []string
	occurred     time.Time
	body         []byte             // canonical event body
	stored       store.PreparedBody // body encoded for storage, by the worker
	counted      ledger.Body        // what the statistics' day counts need of it
	piiPlain     []byte
	newKey       []byte
	newSealed    []byte
	noticeSum    []byte // nil without a notice
	notice       string
	refKey       []byte // nil without a ref
}

// importFormat reads rows from a body.
type importFormat interface {
	// next returns the next row and its number; io.EOF at the end. A row
	// that cannot be read at all is returned with rowErr set.
	next() (row importRow, n int, fieldPrefix string, rowErr *ImportError, err error)
}

// Import reads consent records from r (CSV when csvFormat, NDJSON
// otherwise), validates each like the API does and appends the good ones
// to the ledger in large transactions. Rows are read as they arrive: the
// body is never held whole.
func (s *Service) Import(r io.Reader, csvFormat bool) (ImportResult, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{ImportID: "imp_" + hex.EncodeToString(id), Errors: []ImportError{}}
	var src importFormat
	var err error
	if csvFormat {
		src, err = newCSVImport(r)
	} else {
		src = &ndjsonImport{r: bufio.NewReaderSize(r, 64<<10)}
	}
	if err != nil {
		return res, err
	}
	defer holdImportMemory()()
	addErr := func(e ImportError) {
		if len(res.Errors) < maxImportErrors {
			res.Errors = append(res.Errors, e)
		}
	}

	// Rows are read in batches by one goroutine, prepared (validated,
	// hashed, sealed, encoded for storage) by one worker per core, and
	// committed in the order they were read by this one: the write
	// goroutine every commit goes through does only what needs the stored
	// state. A bounded queue of batches keeps memory flat however long the
	// body.
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *importJob, workers)
	inOrder := make(chan *importJob, workers+1)
	readDone := make(chan importRead, 1)
	stop := make(chan struct{})
	settings := s.Settings()
	now := time.Now().UTC()
	for range workers {
		go func() {
			prep := s.newImportPreparer(settings, now)
			for j := range jobs {
				prep.prepareBatch(j)
				close(j.done)
			}
		}()
	}
	go func() {
		var out importRead
		defer func() { close(jobs); close(inOrder); readDone <- out }()
		j := newImportJob()
		send := func() bool {
			select {
			case inOrder <- j: // first: a worker may finish it at once
			case <-stop:
				return false
			}
			jobs <- j // a worker is free once the queue moves
			j = newImportJob()
			return true
		}
		for {
			row, n, prefix, rowErr, err := src.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// The rows read before the fault are still recorded.
				out.err = err
				break
			}
			out.lastRow = n
			j.rows = append(j.rows, importRaw{row: row, n: n, prefix: prefix, err: rowErr})
			if len(j.rows) == importBatch && !send() {
				return
			}
		}
		if len(j.rows) > 0 {
			send()
		}
	}()

	var commitErr error
	rejected := 0
	var errs []ImportError
	// Prepared batches are gathered into larger commits; the reader and
	// the workers go on with the next batches meanwhile, so at most
	// importCommitBatches + workers + 2 batches are held at once.
	group := make([]importEntry, 0, importCommitBatches*importBatch)
	commit := func() {
		for rest := group; commitErr == nil && len(rest) > 0; {
			done, accepted, skipped, superseded, err := s.commitImport(rest)
			if err != nil {
				commitErr = err
				close(stop)
				break
			}
			res.Accepted += accepted
			res.Skipped += skipped
			res.Superseded += superseded
			rest = rest[done:]
		}
		clear(group) // the rows' bytes go with them
		group = group[:0]
	}
	for j := range inOrder {
		<-j.done
		rejected += j.rejected
		if len(errs) < maxImportErrors {
			errs = append(errs, j.errs...)
		}
		if commitErr != nil {
			continue
		}
		group = append(group, j.entries...)
		j.entries = nil
		if len(group) >= importCommitBatches*importBatch {
			commit()
		}
	}
	commit()
	out := <-readDone
	res.Rejected = rejected
	for _, e := range errs {
		addErr(e)
	}
	slices.SortStableFunc(res.Errors, func(a, b ImportError) int { return a.Row - b.Row })
	if commitErr != nil {
		return res, commitErr
	}
	if out.err != nil {
		var e *Error
		if errors.As(out.err, &e) {
			return res, &Error{Code: e.Code, Message: fmt.Sprintf("%s at row %d; the %d rows before it were recorded (send the file again once fixed: rows with a ref are not recorded twice)",
				e.Message, out.lastRow+1, res.Accepted)}
		}
		return res, out.err
	}
	if res.Accepted > 0 {
		s.wakeOutbound()
	}
	s.log.Info("import finished", "import_id", res.ImportID, "accepted", res.Accepted, "skipped", res.Skipped,
		"rejected", res.Rejected, "superseded", res.Superseded)
	return res, nil
}

// importPreparer validates rows against one snapshot of the settings and
// remembers the last notice hashed (an import usually repeats one text).
type importPreparer struct {
	s          *Service
	settings   Settings
	business   string
	now        time.Time
	lastNotice string
	lastSum    []byte
	goodNotice string // the last opt-in notice that passed validation
}

func (s *Service) newImportPreparer(st Settings, now time.Time) *importPreparer {
	return &importPreparer{s: s, settings: st, business: st.BusinessName, now: now}
}

// importRaw is a row as read, before it is prepared.
type importRaw struct {
	row    importRow
	n      int
	prefix string
	err    *ImportError // the row could not be read
}

// importJob is one batch of rows on its way from the reader, through a
// preparing worker, to the commit.
type importJob struct {
	rows     []importRaw
	entries  []importEntry // the good rows, prepared
	rejected int
	errs     []ImportError
	done     chan struct{} // closed once prepared
}

func newImportJob() *importJob {
	return &importJob{rows: make([]importRaw, 0, importBatch), done: make(chan struct{})}
}

// importRead is what the reader reports once the body is read.
type importRead struct {
	lastRow int
	err     error
}

// prepareBatch prepares a job's rows, keeping the good ones and the faults
// of the bad ones in row order.
func (p *importPreparer) prepareBatch(j *importJob) {
	j.entries = make([]importEntry, 0, len(j.rows))
	for _, r := range j.rows {
		var faults []ImportError
		var e importEntry
		if r.err != nil {
			faults = []ImportError{*r.err}
		} else {
			e, faults = p.prepare(r.row, r.n, r.prefix)
		}
		if len(faults) > 0 {
			j.rejected++
			if len(j.errs) < maxImportErrors {
				j.errs = append(j.errs, faults...)
			}
			continue
		}
		j.entries = append(j.entries, e)
	}
	j.rows = nil // the raw rows are not needed any more
}

// prepare validates one row and does every part of its write that does
// not need the stored state; faults name every bad field.
func (p *importPreparer) prepare(row importRow, n int, evidencePrefix string) (importEntry, []ImportError) {
	var faults []ImportError
	bad := func(field, reason string) { faults = append(faults, ImportError{Row: n, Field: field, Reason: reason}) }
	e := importEntry{row: n, typ: row.Type}
	if row.Type != ledger.TypeOptIn && row.Type != ledger.TypeOptOut {
		bad("type", "must be opt_in or opt_out")
	}
	var e164 string
	if row.Phone != "" {
		var err error
		if len(row.Phone) > 40 {
			bad("phone", "must have at most 40 characters")
		} else if e164, err = phone.Normalize(row.Phone, p.settings.DefaultRegion); err != nil {
			bad("phone", err.Error())
		} else if old, ok := phone.LegacyReading(row.Phone, p.settings.DefaultRegion, e164); ok {
			// An upgraded file may keep this person under the released
			// versions' reading of the digits: the API's contact, not a second one.
			if e164, err = p.s.knownOf(e164, old); err != nil {
				bad("phone", "the stored contacts could not be read; send the row again")
			}
		}
	}
	if row.UserID != "" && !whatsapp.ValidUserID(row.UserID) {
		bad("user_id", "not a WhatsApp user id (like US.13491208655302741918)")
	}
	if row.Phone == "" && row.UserID == "" {
		bad("phone", "is required (or user_id)")
	}
	if len(row.Topics) > 50 {
		bad("topics", "must have at most 50 items")
	}
	for _, t := range row.Topics {
		if _, ok := p.settings.topic(t); !ok {
			bad("topics", fmt.Sprintf("unknown topic %q; the catalog has %s", t, strings.Join(p.settings.TopicIDs(), ", ")))
			break
		}
	}
	if row.Type == ledger.TypeOptIn && len(row.Topics) == 0 {
		bad("topics", "an opt-in needs at least one topic")
	}
	source := row.Source
	if source == "" {
		source = "import"
	} else if !isOneOf(source, optInSources) {
		bad("source", "must be one of: "+strings.Join(optInSources, ", "))
	}
	occurred, err := time.Parse(time.RFC3339Nano, row.OccurredAt)
	switch {
	case row.OccurredAt == "":
		bad("occurred_at", "is required")
	case err != nil:
		bad("occurred_at", "must be an RFC 3339 time like 2024-01-31T09:30:00Z")
	case occurred.After(p.now.Add(importClockSkew)):
		bad("occurred_at", "is in the future")
	case occurred.Year() < 1990:
		bad("occurred_at", "is before 1990")
	}
	occurred = occurred.UTC().Truncate(time.Millisecond)
	if row.Type == ledger.TypeOptIn {
		switch {
		case row.NoticeText == "":
			bad("notice_text", "is required for an opt-in: the exact words the person agreed to")
		case row.NoticeText == p.goodNotice:
			// checked on an earlier row (imports repeat one or two texts)
		case len(row.NoticeText) > 4000 || !isSafeText(row.NoticeText):
			bad("notice_text", "must be at most 4000 characters of text")
		case !namesBusiness(row.NoticeText, p.business):
			bad("notice_text", "must name the business ("+p.business+") the person agrees to hear from")
		default:
			p.goodNotice = row.NoticeText
		}
	} else if row.NoticeText != "" && (len(row.NoticeText) > 4000 || !isSafeText(row.NoticeText)) {
		bad("notice_text", "must be at most 4000 characters of text")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"notice_version", row.NoticeVersion, 40}, {"campaign", row.Campaign, 64}, {"reason", row.Reason, 500}, {"ref", row.Ref, 200}} {
		if len(f.v) > f.max || !isSafeText(f.v) {
			bad(f.name, fmt.Sprintf("must be at most %d characters of text", f.max))
		}
	}
	if row.NoticeLocale != "" && !isOneOf(row.NoticeLocale, []string{"pt-BR", "en", "es"}) {
		bad("notice_locale", "must be one of: pt-BR, en, es")
	}
	if row.Evidence != (ledger.Evidence{}) { // most imports carry none: skip the reflection
		var ve *Error
		if err := Validate(&row.Evidence); errors.As(err, &ve) {
			for _, f := range ve.Fields {
				bad(evidencePrefix+f.Field, f.Reason)
			}
		}
	}
	if len(faults) > 0 {
		return e, faults
	}

	// As in Record: a number's hash is the subject; a BSUID alone stands
	// for the contact it is tied to, found in the write (commitImport).
	if e164 != "" {
		e.phoneSubject = p.s.subject(e164)
	}
	if row.UserID != "" {
		e.userKey = p.s.userKey(row.UserID)
	}
	e.subject = e.phoneSubject
	if e.subject == nil {
		e.subject = e.userKey
	}
	e.occurred = occurred
	e.topics = slices.Compact(slices.Sorted(slices.Values(row.Topics)))
	if e.topics == nil {
		e.topics = []string{}
	}
	var noticeHex string
	if row.NoticeText != "" {
		if row.NoticeText != p.lastNotice {
			sum := sha256.Sum256([]byte(row.NoticeText))
			p.lastNotice, p.lastSum = row.NoticeText, sum[:]
		}
		e.noticeSum, e.notice = p.lastSum, p.lastNotice
		noticeHex = hex.EncodeToString(e.noticeSum)
	}
	if row.Ref != "" {
		e.refKey = p.s.subject("import-ref|" + row.Ref)
	}
	random := make([]byte, 16+32)
	if _, err := rand.Read(random); err != nil {
		return e, []ImportError{{Row: n, Field: "", Reason: "internal error"}}
	}
	pii := ledger.Personal{Salt: hex.EncodeToString(random[:16]), Phone: e164, UserID: row.UserID, Evidence: row.Evidence.ValidUTF8()}
	piiSum, piiPlain, err := ledger.PersonalDigest(pii)
	if err == nil {
		e.piiPlain, e.newKey = piiPlain, random[16:]
		e.newSealed, err = ledger.Seal(e.newKey, piiPlain)
	}
	if err == nil {
		body := ledger.Body{Type: row.Type, Subject: hex.EncodeToString(e.subject), Topics: e.topics,
			Source: source, Campaign: row.Campaign, NoticeSHA256: noticeHex, NoticeVersion: row.NoticeVersion,
			NoticeLocale: row.NoticeLocale, Reason: row.Reason, PIISHA256: piiSum,
			OccurredAt: occurred.Format(time.RFC3339Nano), Imported: true}
		e.body, err = ledger.MarshalCanonical(body)
		// The storage encoding (packing, compression) is most of an
		// append's own work: done here, on every core, and only checked
		// in the write.
		e.stored = store.PrepareEventBody(e.body)
		e.counted = ledger.Body{Type: body.Type, Source: body.Source, Campaign: body.Campaign}
		if e.userKey != nil {
			e.bodyFields = &body // re-encoded if the BSUID belongs to another subject
		}
	}
	if err != nil {
		return e, []ImportError{{Row: n, Field: "", Reason: "internal error"}}
	}
	return e, nil
}

// commitImport appends a batch in one transaction and returns once it is
// synced.
func (s *Service) commitImport(batch []importEntry) (done, accepted, skipped, superseded int, err error) {
	catalog := s.Settings().TopicIDs()
	// In a commit of its own: an opt-out sent meanwhile waits for at most
	// the import commit under way, not also the next one folded with it.
	err = s.store.WriteAlone(func(tx store.WriteTx) error {
		done, accepted, skipped, superseded = len(batch), 0, 0, 0 // fn may run again
		var lastNotice []byte
		seen := seenImportRefs(tx, batch)
		readContactsInOrder(tx, batch)
		var fresh []importRefSeq
		for i := range batch {
			// Another write waiting (an opt-out) ends the commit early, at
			// a prepared batch's end: it waits for up to importBatch rows
			// and the commit, not the whole group; the rest of the group
			// goes in the next commit.
			if i > 0 && i%importBatch == 0 && s.store.Pending() > 0 {
				done = i
				break
			}
			e := &batch[i]
			if e.refKey != nil && seen[i] {
				skipped++
				continue
			}
			body := e.body
			var fields ledger.Body
			if e.bodyFields != nil {
				fields = *e.bodyFields
			}
			subject, err := s.eventSubject(tx, e.userKey, e.phoneSubject, e.subject, &fields, &body)
			if err != nil {
				return err
			}
			key, st, err := storedState(tx, subject)
			if err != nil {
				return err
			}
			sealed := e.newSealed
			if key == nil {
				key = e.newKey
			} else if sealed, err = ledger.Seal(key, e.piiPlain); err != nil {
				return err
			}
			at := time.Now().UTC().Truncate(time.Millisecond)
			rec, err := tx.AppendPreparedEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				return ledger.AppendCanonical(make([]byte, 0, len(body)+160), seq, body, at, prev), sealed, subject, nil
			}, &e.stored)
			if err != nil {
				return err
			}
			if e.noticeSum != nil && !bytes.Equal(e.noticeSum, lastNotice) {
				if err := tx.PutNotice(e.noticeSum, e.notice); err != nil {
					return err
				}
				lastNotice = e.noticeSum
			}
			// On the day consent was given, as the statistics show it.
			if err := countOptIn(tx, e.occurred, &e.counted); err != nil {
				return err
			}
			if !st.ApplyImported(e.typ, e.topics, rec.Seq, e.occurred, catalog) {
				superseded++
			}
			if err := tx.PutContact(subject, key, st.Encode()); err != nil {
				return err
			}
			if err := tx.PutSuppression(subject, st.Suppression()); err != nil {
				return err
			}
			if err := s.queueOutbound(tx, rec.Seq, subject, e.typ); err != nil {
				return err
			}
			if e.refKey != nil {
				fresh = append(fresh, importRefSeq{e.refKey, rec.Seq})
			}
			accepted++
		}
		slices.SortFunc(fresh, func(a, b importRefSeq) int { return bytes.Compare(a.ref, b.ref) })
		for _, r := range fresh {
			if err := tx.PutImportRef(r.ref, r.seq); err != nil {
				return err
			}
		}
		return nil
	})
	return done, accepted, skipped, superseded, err
}

// readContactsInOrder reads the records of a batch's contacts (those named
// by number) in key order before the rows are applied: the subjects are
// random hashes, and in key order each lookup walks the pages the one
// before it just walked. The transaction keeps what it read for the rows.
func readContactsInOrder(tx store.WriteTx, batch []importEntry) {
	subjects := make([][]byte, 0, len(batch))
	for i := range batch {
		if batch[i].userKey == nil {
			subjects = append(subjects, batch[i].subject)
		}
	}
	slices.SortFunc(subjects, bytes.Compare)
	for _, s := range subjects {
		tx.Suppression(s)
	}
}

// importRefSeq is a fresh ref and the event it produced, recorded once the
// batch's events are appended.
type importRefSeq struct {
	ref []byte
	seq uint64
}

// seenImportRefs reports, for each row of a batch, whether its ref was
// recorded before: by an earlier import, or by an earlier row of this
// batch (the first row with a ref is the one recorded). The refs are
// looked up in key order (see store.HasImportRef).
func seenImportRefs(tx store.WriteTx, batch []importEntry) []bool {
	seen := make([]bool, len(batch))
	order := make([]int, 0, len(batch))
	for i := range batch {
		if batch[i].refKey != nil {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := bytes.Compare(batch[a].refKey, batch[b].refKey); c != 0 {
			return c
		}
		return a - b
	})
	for j, i := range order {
		if j > 0 && bytes.Equal(batch[order[j-1]].refKey, batch[i].refKey) {
			seen[i] = true // a repeat within the batch: the earlier row has it
			continue
		}
		seen[i] = tx.HasImportRef(batch[i].refKey)
	}
	return seen
}

// ndjsonImport reads one JSON object per line.
type ndjsonImport struct {
	r    *bufio.Reader
	line int
	buf  []byte
}

func (f *ndjsonImport) next() (importRow, int, string, *ImportError, error) {
	for {
		f.buf = f.buf[:0]
		tooLong := false
		for {
			chunk, err := f.r.ReadSlice('\n')
			if len(f.buf)+len(chunk) > maxImportLine {
				tooLong = true
			} else {
				f.buf = append(f.buf, chunk...)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return importRow{}, 0, "", nil, err
			}
			if errors.Is(err, io.EOF) && len(f.buf) == 0 && !tooLong {
				return importRow{}, 0, "", nil, io.EOF
			}
			break
		}
		f.line++
		if tooLong {
			return importRow{}, f.line, "", &ImportError{Row: f.line, Reason: "line longer than 64 KiB"}, nil
		}
		line := bytes.TrimSpace(f.buf)
		if len(line) == 0 {
			f.line-- // blank lines (a trailing newline) are not rows
			continue
		}
		var row importRow
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&row); err != nil {
			return row, f.line, "", &ImportError{Row: f.line, Field: jsonFaultField(err), Reason: jsonFaultReason(err)}, nil
		}
		if dec.More() {
			return row, f.line, "", &ImportError{Row: f.line, Reason: "more than one JSON value on the line"}, nil
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
		return "must be " + jsonKind(typeErr.Type) + ", not " + typeErr.Value
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return "unknown field"
	}
	return "not a JSON object: " + err.Error()
}

// csvImport reads RFC 4180 CSV with a header row (comma or semicolon
// separated, with or without a UTF-8 BOM).
type csvImport struct {
	r     *csv.Reader
	bound *recordBound
	col   []string // column name of each position
	row   int
}

// maxCSVRecord bounds what the CSV reader may pull for one record: it
// keeps a whole record in memory, and an unclosed quote would make the
// rest of the body one record.
const maxCSVRecord = 256 << 10

var errCSVRecordTooLong = newError(CodeInvalidRequest, "a CSV record is longer than 256 KiB (an unclosed quote?)")

// recordBound fails a read once more than max bytes were pulled since the
// last record was completed (reset by csvImport.next).
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

func newCSVImport(r io.Reader) (*csvImport, error) {
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
		return nil, newError(CodeInvalidRequest, "the CSV has no readable header row")
	}
	f := &csvImport{r: cr, bound: bound}
	bound.n = 0
	var unknown []FieldError
	seen := map[string]bool{}
	for _, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		if !slices.Contains(importColumns, name) {
			unknown = append(unknown, FieldError{Field: name, Reason: "unknown column"})
		}
		seen[name] = true
		f.col = append(f.col, name)
	}
	if !seen["phone"] && !seen["user_id"] {
		unknown = append(unknown, FieldError{Field: "phone", Reason: "the header needs a phone (or user_id) column"})
	}
	for _, need := range []string{"type", "occurred_at"} {
		if !seen[need] {
			unknown = append(unknown, FieldError{Field: need, Reason: "the header needs this column"})
		}
	}
	if len(unknown) > 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "the CSV header has faults; columns: " + strings.Join(importColumns, ", "), Fields: unknown}
	}
	return f, nil
}

func (f *csvImport) next() (importRow, int, string, *ImportError, error) {
	rec, err := f.r.Read()
	if errors.Is(err, io.EOF) {
		return importRow{}, 0, "", nil, io.EOF
	}
	f.bound.n = 0
	f.row++
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return importRow{}, f.row, "", &ImportError{Row: f.row, Reason: "malformed CSV: " + perr.Err.Error()}, nil
	}
	if err != nil {
		return importRow{}, 0, "", nil, err
	}
	var row importRow
	size := 0
	for i, v := range rec {
		size += len(v)
		if i >= len(f.col) {
			if strings.TrimSpace(v) != "" {
				return row, f.row, "", &ImportError{Row: f.row, Reason: "more cells than header columns"}, nil
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
	if size > maxImportLine {
		return importRow{}, f.row, "", &ImportError{Row: f.row, Reason: "record longer than 64 KiB"}, nil
	}
	return row, f.row, "", nil, nil
}

// idleDeadlineReader extends the connection's read deadline while bytes
// keep arriving, so a long import is limited by idleness, not duration.
type idleDeadlineReader struct {
	r    io.Reader
	conn net.Conn
	last time.Time
}

func (d *idleDeadlineReader) Read(p []byte) (int, error) {
	if now := time.Now(); d.conn != nil && now.Sub(d.last) > time.Second {
		_ = d.conn.SetReadDeadline(now.Add(importIdle))
		d.last = now
	}
	return d.r.Read(p)
}

// streamedPath is the one route whose body is read as a stream; every
// other route gets its body bounded and in memory (httpguard.BoundBody).
const streamedPath = "/v1/imports"

func (h *Handler) importConsent(c *fiber.Ctx) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != "text/csv" && ct != "application/x-ndjson" {
		return newError(CodeUnsupportedMediaType, "send the rows as text/csv or application/x-ndjson")
	}
	if enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc != "" && enc != "identity" {
		return newError(CodeUnsupportedMediaType, "send the rows uncompressed (no Content-Encoding)")
	}
	var body io.Reader
	if c.Request().IsBodyStream() {
		body = &idleDeadlineReader{r: c.Context().RequestBodyStream(), conn: c.Context().Conn()}
	} else {
		body = bytes.NewReader(c.Request().Body())
	}
	res, err := h.s.Import(body, ct == "text/csv")
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		if res.Accepted+res.Skipped > 0 || errors.Is(err, io.ErrUnexpectedEOF) || isNetError(err) {
			h.s.log.Warn("import interrupted", "import_id", res.ImportID, "accepted", res.Accepted, "err", err)
			return newError(CodeInvalidRequest, fmt.Sprintf("the body could not be read to its end; %d rows were recorded, send the file again (rows with a ref are not recorded twice)", res.Accepted))
		}
		return err
	}
	return c.JSON(res)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// RunImport is `consentry import FILE --url URL`: it streams a CSV or
// NDJSON file to a running server's POST /v1/imports (key from --key or
// CONSENTRY_API_KEY) with a progress bar on stderr, then prints the
// counts and the errors by row. Exit 0 when every row was recorded or
// skipped, 1 when rows were rejected or the import failed, 2 on usage.
func RunImport(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("url", getenv("CONSENTRY_URL"), "base URL of the running server, e.g. http://127.0.0.1:8080")
	key := fs.String("key", getenv("CONSENTRY_API_KEY"), "API key with the consent:write scope ($CONSENTRY_API_KEY)")
	format := fs.String("format", "", "csv or ndjson (default: by the file's extension)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: consentry import FILE --url URL [--format csv|ndjson]   (key from $CONSENTRY_API_KEY)")
		fmt.Fprintln(stderr, "  each row names the person by phone, user_id (a WhatsApp user id) or both; see docs/API.md, Imports")
		fs.PrintDefaults()
	}
	file, rest := splitFirstArg(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" || *server == "" {
		fs.Usage()
		return 2
	}
	if *key == "" {
		fmt.Fprintln(stderr, "import: no API key: set CONSENTRY_API_KEY (or --key) to a key with the consent:write scope")
		return 2
	}
	kind := strings.ToLower(*format)
	if kind == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv", ".txt":
			kind = "csv"
		case ".ndjson", ".jsonl", ".json":
			kind = "ndjson"
		}
	}
	contentType := map[string]string{"csv": "text/csv", "ndjson": "application/x-ndjson"}[kind]
	if contentType == "" {
		fmt.Fprintln(stderr, "import: say --format csv or --format ndjson")
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	bar := newProgressBar(stderr, int(info.Size()))
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*server, "/")+streamedPath, &progressReader{r: f, bar: bar})
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 2
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+*key)
	resp, err := http.DefaultClient.Do(req)
	bar.finish()
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		var env envelope
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			fmt.Fprintln(stderr, "import: the server refused it:", cliMessage(env.Error))
		} else {
			fmt.Fprintf(stderr, "import: the server answered %s\n", resp.Status)
		}
		return 1
	}
	var res ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		fmt.Fprintln(stderr, "import: unreadable answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d recorded, %d skipped (ref seen before), %d rejected", res.ImportID, res.Accepted, res.Skipped, res.Rejected)
	if res.Superseded > 0 {
		fmt.Fprintf(stdout, ", %d kept as history only (a later decision stands)", res.Superseded)
	}
	fmt.Fprintln(stdout)
	for _, e := range res.Errors {
		field := e.Field
		if field == "" {
			field = "-"
		}
		fmt.Fprintf(stdout, "row %d\t%s\t%s\n", e.Row, field, e.Reason)
	}
	if res.Rejected > len(res.Errors) {
		fmt.Fprintf(stdout, "(only the first %d errors are listed)\n", len(res.Errors))
	}
	if res.Rejected > 0 {
		return 1
	}
	return 0
}

// progressReader moves a progress bar as a file is read.
type progressReader struct {
	r   io.Reader
	bar *progressBar
	n   int
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.n+n < p.bar.total { // finish draws the full bar once
		p.n += n
		p.bar.set(p.n)
	}
	return n, err
}
