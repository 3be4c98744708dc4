package capture

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// priorOptIns lists those of topics the contact was opted in to at some
// point of its history, replaying its events. A contact without a stored
// record (never seen, or erased) has none: a "resume" alone never creates
// consent.
func priorOptIns(tx store.WriteTx, subject, key []byte, topics, catalog []string) ([]string, error) {
	if key == nil {
		return nil, nil
	}
	replay := ledger.State{Topics: map[string]ledger.TopicState{}}
	seen := map[string]bool{}
	for _, seq := range tx.ContactEventSeqs(subject) {
		rec, err := tx.Event(seq)
		if err != nil {
			return nil, err
		}
		var ev struct {
			Type   string   `json:"type"`
			Status string   `json:"status"`
			Topics []string `json:"topics"`
		}
		if err := json.Unmarshal(rec.Canonical, &ev); err != nil {
			return nil, fmt.Errorf("event %d: %w", seq, err)
		}
		replay.Apply(ev.Type, ev.Status, ev.Topics, seq, time.Time{}, catalog)
		for _, t := range topics {
			if s, _ := replay.StateOf(t); s == ledger.StateOptedIn {
				seen[t] = true
			}
		}
	}
	var out []string
	for _, t := range topics {
		if seen[t] {
			out = append(out, t)
		}
	}
	return out, nil
}
