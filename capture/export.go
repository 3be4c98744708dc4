package capture

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/capture/csvsafe"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// exportChunk is how many events one read transaction copies out; the
// export never holds a read transaction for longer than one chunk.
const exportChunk = 2048

func publicKeyString(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// PublicKey is the checkpoint signing key as written in checkpoints.
func (s *Service) PublicKey() string { return publicKeyString(s.signer.Public().(ed25519.PublicKey)) }

func (s *Service) sign(head store.Head) ledger.Checkpoint {
	pub := s.signer.Public().(ed25519.PublicKey)
	cp := ledger.Checkpoint{Size: head.Seq, Head: hex.EncodeToString(head.Hash[:]), At: time.Now().UTC().Truncate(time.Millisecond),
		KeyID: ledger.KeyID(pub), PublicKey: publicKeyString(pub)}
	if head.Seq == 0 {
		cp.Head = ledger.ZeroHash
	}
	cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.signer, ledger.CheckpointMessage(cp.Size, cp.Head, cp.At)))
	return cp
}

// Checkpoint signs the current head of the ledger.
func (s *Service) Checkpoint() (ledger.Checkpoint, error) {
	head, err := s.store.Head()
	if err != nil {
		return ledger.Checkpoint{}, err
	}
	return s.sign(head), nil
}

// EventsPage returns up to limit events after seq, ascending, as JSON.
func (s *Service) EventsPage(after uint64, limit int) ([]json.RawMessage, error) {
	recs, err := s.store.Events(after, limit)
	if err != nil {
		return nil, err
	}
	keys, err := s.keysFor(recs)
	if err != nil {
		return nil, err
	}
	return eventLines(recs, keys)
}

// eventLines renders records as the API answers events, each with the
// personal data its contact's key (keys, by subject) opens.
func eventLines(recs []store.EventRecord, keys map[string][]byte) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		line, err := ledger.Line(nil, rec, keys[string(ledger.SubjectOf(rec))])
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}

func (s *Service) keysFor(recs []store.EventRecord) (map[string][]byte, error) {
	subjects := make([][]byte, 0, len(recs))
	var decoded []byte // the subjects, decoded into one array
	for _, rec := range recs {
		if rec.Sealed == nil {
			continue
		}
		sub := ledger.CanonicalSubject(rec.Canonical)
		if cap(decoded)-len(decoded) < len(sub)/2 {
			decoded = make([]byte, 0, max(len(sub)/2, 16*len(recs)))
		}
		start := len(decoded)
		decoded, _ = hex.AppendDecode(decoded, sub) // as ledger.SubjectOf: what decodes before any error
		subjects = append(subjects, decoded[start:len(decoded):len(decoded)])
	}
	return s.store.ContactKeys(subjects)
}

// ExportFilter limits an export to events at or after From and before To.
type ExportFilter struct {
	From, To time.Time
}

func (f ExportFilter) keep(at time.Time) bool {
	return (f.From.IsZero() || !at.Before(f.From)) && (f.To.IsZero() || at.Before(f.To))
}

// ExportNDJSON streams the ledger as one event per line, exactly as hashed
// plus hash and personal data, and a signed checkpoint as the last line.
// Events appended while the export runs are not included: the export ends
// at the head it saw first, and the checkpoint covers the last exported
// event.
func (s *Service) ExportNDJSON(w io.Writer, f ExportFilter) error {
	head, err := s.store.Head()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var last store.Head
	ranged := !f.From.IsZero() || !f.To.IsZero()
	wroteRange := false
	parts := make([]exportPart, runtime.GOMAXPROCS(0))
	err = s.eachChunk(head.Seq, func(recs []store.EventRecord, keys map[string][]byte) error {
		// Opening and rendering the personal data is most of an export's
		// work: each core renders a part of the chunk, written in order.
		n := max(1, min(len(parts), len(recs)/256))
		size := (len(recs) + n - 1) / n
		var wg sync.WaitGroup
		for i := 1; i < n; i++ {
			wg.Add(1)
			go func(p *exportPart, part []store.EventRecord) {
				defer wg.Done()
				p.render(part, keys, f)
			}(&parts[i], recs[i*size:min((i+1)*size, len(recs))])
		}
		parts[0].render(recs[:min(size, len(recs))], keys, f)
		wg.Wait()
		for _, p := range parts[:n] {
			if p.err != nil {
				return p.err
			}
			if ranged && !wroteRange && p.firstSeq != 0 {
				if err := writeRangeLine(bw, f, p.firstSeq, p.firstPrev); err != nil {
					return err
				}
				wroteRange = true
			}
			if _, err := bw.Write(p.buf); err != nil {
				return err
			}
			if p.last.Seq != 0 {
				last = p.last
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ranged && !wroteRange { // no event in the range
		if err := writeRangeLine(bw, f, 0, ""); err != nil {
			return err
		}
	}
	cp, err := json.Marshal(map[string]ledger.Checkpoint{"checkpoint": s.sign(last)})
	if err != nil {
		return err
	}
	bw.Write(cp)
	bw.WriteByte('\n')
	return bw.Flush()
}

func writeRangeLine(w io.Writer, f ExportFilter, firstSeq uint64, prevHash string) error {
	r := ledger.Range{FirstSeq: firstSeq, PrevHash: prevHash}
	if !f.From.IsZero() {
		r.From = &f.From
	}
	if !f.To.IsZero() {
		r.To = &f.To
	}
	b, err := json.Marshal(map[string]ledger.Range{"range": r})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// exportPart is one core's share of an export chunk: its lines, the first
// event they hold (seq and prev_hash) and the last.
type exportPart struct {
	lines     ledger.Renderer
	buf       []byte
	last      store.Head
	firstSeq  uint64
	firstPrev string
	err       error
}

func (p *exportPart) render(recs []store.EventRecord, keys map[string][]byte, f ExportFilter) {
	p.buf, p.last, p.err, p.firstSeq, p.firstPrev = p.buf[:0], store.Head{}, nil, 0, ""
	filtered := !f.From.IsZero() || !f.To.IsZero()
	for _, rec := range recs {
		if filtered && !f.keep(ledger.CanonicalAt(rec.Canonical)) {
			continue
		}
		buf, err := p.lines.Line(p.buf, rec, p.lines.Key(rec, keys))
		if err != nil {
			p.err = err
			return
		}
		p.buf = append(buf, '\n')
		if p.firstSeq == 0 {
			p.firstSeq, p.firstPrev = rec.Seq, string(ledger.CanonicalString(rec.Canonical, `"prev_hash":"`))
		}
		p.last = store.Head{Seq: rec.Seq, Hash: rec.Hash}
	}
}

// eachChunk walks events 1..end in chunks, each read in its own short
// transaction, with the sealing keys of the chunk's contacts. The reader
// reads ahead and leaves what it read cold in the page cache (see
// store.EventReader), so an export does not wait for the disk and does not
// evict the contacts checks read. Decoding a chunk and looking up its keys
// are each serial, so they are two stages, each a goroutine: the reader
// decodes chunk n+2 while the keys of chunk n+1 are looked up and fn
// handles chunk n, and the three overlap on the cores there are.
func (s *Service) eachChunk(end uint64, fn func([]store.EventRecord, map[string][]byte) error) error {
	type chunk struct {
		recs []store.EventRecord
		keys map[string][]byte
		err  error
	}
	read := make(chan chunk, 1)
	keyed := make(chan chunk, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(read)
		reader := s.store.NewEventReader()
		defer reader.Close()
		for after := uint64(0); after < end; {
			var c chunk
			c.recs, c.err = reader.Next(after, int(min(exportChunk, end-after)))
			if c.err == nil && len(c.recs) == 0 {
				return
			}
			select {
			case read <- c:
			case <-stop: // fn failed: the export is over
				return
			}
			if c.err != nil {
				return
			}
			after = c.recs[len(c.recs)-1].Seq
		}
	}()
	go func() {
		defer close(keyed)
		for c := range read {
			if c.err == nil {
				c.keys, c.err = s.keysFor(c.recs)
			}
			select {
			case keyed <- c:
			case <-stop:
				for range read { // let the reader see stop and end
				}
				return
			}
			if c.err != nil {
				for range read {
				}
				return
			}
		}
	}()
	for c := range keyed {
		if c.err != nil {
			return c.err
		}
		if err := fn(c.recs, c.keys); err != nil {
			return err
		}
	}
	return nil
}

// csvHeader names the CSV export's columns. The personal ones (phone,
// user_id, raw_text and the evidence, the ad referral's included) come
// from the sealed data and are empty once an event is erased; occurred_at
// is empty for events that were not imported.
var csvHeader = []string{"seq", "id", "at", "occurred_at", "imported", "type", "status", "phone", "user_id",
	"business_number", "topics", "source", "campaign", "link_id", "notice_sha256", "notice_version",
	"notice_locale", "reason", "raw_text", "page_url", "ip", "user_agent", "staff_id", "link_code", "message_id",
	"ctwa_clid", "source_id", "source_type", "source_url", "erased", "prev_hash", "hash"}

// csvTopics writes an event's topics; an all-topics event is "*".
func csvTopics(topics []string) string {
	if len(topics) == 0 {
		return ledger.AllTopics
	}
	return strings.Join(topics, " ")
}

// ExportCSV streams the ledger as RFC 4180 CSV with a header row.
func (s *Service) ExportCSV(w io.Writer, f ExportFilter) error {
	head, err := s.store.Head()
	if err != nil {
		return err
	}
	cw := csvsafe.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	row := make([]string, len(csvHeader))
	err = s.eachChunk(head.Seq, func(recs []store.EventRecord, keys map[string][]byte) error {
		for _, rec := range recs {
			var core ledger.Core
			if err := json.Unmarshal(rec.Canonical, &core); err != nil {
				return fmt.Errorf("event %d: %w", rec.Seq, err)
			}
			if !f.keep(core.At) {
				continue
			}
			pii, err := ledger.OpenPersonal(keys[string(ledger.SubjectOf(rec))], rec.Sealed)
			if err != nil {
				return err
			}
			var ev ledger.Evidence
			phone, userID, erased := "", "", "true"
			if pii != nil {
				ev, phone, userID, erased = pii.Evidence, pii.Phone, pii.UserID, "false"
			}
			row = append(row[:0], strconv.FormatUint(core.Seq, 10), core.ID, core.At.Format(time.RFC3339Nano),
				core.OccurredAt, strconv.FormatBool(core.Imported), core.Type, core.Status, phone, userID,
				core.BusinessNumber, csvTopics(core.Topics), core.Source, core.Campaign,
				core.LinkID, core.NoticeSHA256, core.NoticeVersion, core.NoticeLocale, core.Reason,
				ev.RawText, ev.PageURL, ev.IP, ev.UserAgent, ev.StaffID, ev.LinkCode, ev.MessageID,
				ev.CtwaClid, ev.AdSourceID, ev.AdSourceType, ev.AdSourceURL, erased,
				core.PrevHash, hex.EncodeToString(rec.Hash[:]))
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
