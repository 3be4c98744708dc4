package capture

import (
	"encoding/binary"
	"errors"
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
	State string
	Seq   uint64
	At    time.Time
}

// contactState is what the store keeps per contact, keyed by subject. It
// holds no personal data. Topics["*"] is a decision about all topics; for a
// topic the later (higher seq) of its own entry and "*" decides.
type contactState struct {
	Topics map[string]topicState
	// Held lists the topics allowed just before the last global opt-out, so
	// an opt-in keyword can restore them.
	Held []string
}

// State records are small binary values, read by every check and written
// by every consent change inside the shared write transaction, so they
// avoid JSON's reflection:
//
//	version (1) ‖ uvarint n ‖ n × (uvarint len ‖ topic ‖ state code ‖
//	uvarint seq ‖ varint at in Unix ms) ‖ uvarint h ‖ h × (uvarint len ‖ topic)
const stateVersion = 1

var stateCodes = []string{StateOptedIn, StateOptedOut, StatePending}

var errCorruptState = errors.New("stored contact state is unreadable")

// decodeState reads a stored state; nil or empty is a contact without one.
func decodeState(b []byte) (contactState, error) {
	st := contactState{Topics: map[string]topicState{}}
	if len(b) == 0 {
		return st, nil
	}
	if b[0] != stateVersion {
		return st, errCorruptState
	}
	r := stateReader{b: b[1:]}
	for n := r.uvarint(); n > 0 && r.ok(); n-- {
		topic := r.str()
		code := r.byte()
		ts := topicState{Seq: r.uvarint(), At: time.UnixMilli(r.varint()).UTC()}
		if int(code) >= len(stateCodes) {
			return st, errCorruptState
		}
		ts.State = stateCodes[code]
		st.Topics[topic] = ts
	}
	for h := r.uvarint(); h > 0 && r.ok(); h-- {
		st.Held = append(st.Held, r.str())
	}
	if !r.ok() || len(r.b) != 0 {
		return st, errCorruptState
	}
	return st, nil
}

// encode writes the state in its stored form.
func (st *contactState) encode() []byte {
	b := make([]byte, 1, 64)
	b[0] = stateVersion
	b = binary.AppendUvarint(b, uint64(len(st.Topics)))
	for topic, ts := range st.Topics {
		b = binary.AppendUvarint(b, uint64(len(topic)))
		b = append(b, topic...)
		b = append(b, byte(slices.Index(stateCodes, ts.State)))
		b = binary.AppendUvarint(b, ts.Seq)
		b = binary.AppendVarint(b, ts.At.UnixMilli())
	}
	b = binary.AppendUvarint(b, uint64(len(st.Held)))
	for _, t := range st.Held {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	return b
}

// stateReader decodes the binary state, remembering the first fault.
type stateReader struct {
	b   []byte
	bad bool
}

func (r *stateReader) ok() bool { return !r.bad }

func (r *stateReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *stateReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
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
	return out.encode()
}
