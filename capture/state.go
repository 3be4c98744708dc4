package capture

import (
	"encoding/json"
	"slices"
	"time"
)

// Consent states reported by checks.
const (
	StateOptedIn   = "opted_in"
	StateOptedOut  = "opted_out"
	StateNoConsent = "no_consent"
	StatePending   = "pending"
	StateInvalid   = "invalid"
)

// topicState is the latest decision about one topic (or all topics).
type topicState struct {
	State string    `json:"s"`
	Seq   uint64    `json:"q"`
	At    time.Time `json:"a"`
}

// contactState is what the store keeps per contact, keyed by subject. It
// holds no personal data. Topics["*"] is a decision about all topics; for a
// topic the later (higher seq) of its own entry and "*" decides.
type contactState struct {
	Topics map[string]topicState `json:"t"`
	// Held lists the topics allowed just before the last global opt-out, so
	// an opt-in keyword can restore them.
	Held []string `json:"h,omitempty"`
}

func decodeState(b []byte) contactState {
	var st contactState
	if len(b) > 0 {
		_ = json.Unmarshal(b, &st)
	}
	if st.Topics == nil {
		st.Topics = map[string]topicState{}
	}
	return st
}

// decide returns the entry that governs topic.
func (st *contactState) decide(topic string) (topicState, bool) {
	own, hasOwn := st.Topics[topic]
	all, hasAll := st.Topics[allTopics]
	switch {
	case hasOwn && hasAll:
		if all.Seq > own.Seq {
			return all, true
		}
		return own, true
	case hasOwn:
		return own, true
	case hasAll:
		return all, true
	}
	return topicState{}, false
}

// stateOf answers a check for one topic.
func (st *contactState) stateOf(topic string) (state string, since time.Time) {
	ts, ok := st.decide(topic)
	if !ok {
		return StateNoConsent, time.Time{}
	}
	return ts.State, ts.At
}

// apply folds an event into the state. catalog is the current topic list,
// needed to remember what a global opt-out withdrew.
func (st *contactState) apply(typ, status string, topics []string, seq uint64, at time.Time, catalog []string) {
	keys := topics
	if len(keys) == 0 {
		keys = []string{allTopics}
	}
	switch typ {
	case TypeOptOut:
		if len(topics) == 0 {
			st.Held = st.Held[:0]
			for _, t := range catalog {
				if s, _ := st.stateOf(t); s == StateOptedIn {
					st.Held = append(st.Held, t)
				}
			}
		}
		for _, k := range keys {
			st.Topics[k] = topicState{State: StateOptedOut, Seq: seq, At: at}
		}
	case TypeOptIn:
		for _, k := range keys {
			if status == StatePending {
				// A pending opt-in never downgrades a confirmed one.
				if s, _ := st.stateOf(k); s == StateOptedIn && k != allTopics {
					continue
				}
				st.Topics[k] = topicState{State: StatePending, Seq: seq, At: at}
				continue
			}
			st.Topics[k] = topicState{State: StateOptedIn, Seq: seq, At: at}
		}
	case TypeConfirm:
		for k, ts := range st.Topics {
			if ts.State == StatePending && (len(topics) == 0 || slices.Contains(topics, k)) {
				st.Topics[k] = topicState{State: StateOptedIn, Seq: seq, At: at}
			}
		}
	}
}

// pendingTopics lists topics waiting for confirmation.
func (st *contactState) pendingTopics() []string {
	var out []string
	for k, ts := range st.Topics {
		if ts.State == StatePending {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// suppression is the part of the state that must outlive erasure: the
// opted-out entries.
func (st *contactState) suppression() []byte {
	out := contactState{Topics: map[string]topicState{}}
	for k, ts := range st.Topics {
		if ts.State == StateOptedOut {
			out.Topics[k] = ts
		}
	}
	if len(out.Topics) == 0 {
		return nil
	}
	b, _ := json.Marshal(out)
	return b
}
