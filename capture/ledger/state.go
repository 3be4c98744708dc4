package ledger

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

// TopicState is the latest decision about one topic (or all topics).
type TopicState struct {
	State string
	Seq   uint64
	At    time.Time
}

// State is what the store keeps per contact, keyed by subject. It
// holds no personal data. Topics["*"] is a decision about all topics; for a
// topic the later (higher seq) of its own entry and "*" decides.
type State struct {
	Topics map[string]TopicState
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

// DecodeState reads a stored state; nil or empty is a contact without one.
func DecodeState(b []byte) (State, error) {
	st := State{Topics: map[string]TopicState{}}
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
		ts := TopicState{Seq: r.uvarint(), At: time.UnixMilli(r.varint()).UTC()}
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
func (st *State) Encode() []byte {
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
func (st *State) Decide(topic string) (TopicState, bool) {
	own, hasOwn := st.Topics[topic]
	all, hasAll := st.Topics[AllTopics]
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
	return TopicState{}, false
}

// stateOf answers a check for one topic.
func (st *State) StateOf(topic string) (state string, since time.Time) {
	ts, ok := st.Decide(topic)
	if !ok {
		return StateNoConsent, time.Time{}
	}
	return ts.State, ts.At
}

// apply folds an event into the state. catalog is the current topic list,
// needed to remember what a global opt-out withdrew.
func (st *State) Apply(typ, status string, topics []string, seq uint64, at time.Time, catalog []string) {
	keys := topics
	if len(keys) == 0 {
		keys = []string{AllTopics}
	}
	switch typ {
	case TypeOptOut:
		if len(topics) == 0 {
			st.Held = st.Held[:0]
			for _, t := range catalog {
				if s, _ := st.StateOf(t); s == StateOptedIn {
					st.Held = append(st.Held, t)
				}
			}
		}
		for _, k := range keys {
			st.Topics[k] = TopicState{State: StateOptedOut, Seq: seq, At: at}
		}
	case TypeOptIn:
		for _, k := range keys {
			if status == StatePending {
				// A pending opt-in never downgrades a confirmed one.
				if s, _ := st.StateOf(k); s == StateOptedIn && k != AllTopics {
					continue
				}
				st.Topics[k] = TopicState{State: StatePending, Seq: seq, At: at}
				continue
			}
			st.Topics[k] = TopicState{State: StateOptedIn, Seq: seq, At: at}
		}
	case TypeConfirm:
		for k, ts := range st.Topics {
			if ts.State == StatePending && (len(topics) == 0 || slices.Contains(topics, k)) {
				st.Topics[k] = TopicState{State: StateOptedIn, Seq: seq, At: at}
			}
		}
	}
}

// pendingTopics lists topics waiting for confirmation.
func (st *State) PendingTopics() []string {
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
func (st *State) Suppression() []byte {
	out := State{Topics: map[string]TopicState{}}
	for k, ts := range st.Topics {
		if ts.State == StateOptedOut {
			out.Topics[k] = ts
		}
	}
	if len(out.Topics) == 0 {
		return nil
	}
	return out.Encode()
}

// ApplyImported folds an imported event into the state by its occurred_at:
// the latest decision about a topic wins, and on a tie an opt-out wins. A
// topic whose current decision is later than the imported one keeps it
// (the event stays in the history). So an imported opt-in never undoes a
// later opt-out, and an imported opt-out never undoes a later opt-in. It
// reports whether the event changed the decision for any topic.
func (st *State) ApplyImported(typ string, topics []string, seq uint64, occurred time.Time, catalog []string) bool {
	later := func(ts TopicState) bool {
		return ts.At.After(occurred) || (ts.At.Equal(occurred) && ts.State == StateOptedOut && typ == TypeOptIn)
	}
	keys := topics
	if len(keys) == 0 {
		// A global opt-out applies as one unless some topic was decided
		// later; then it covers each topic decided earlier.
		newer := false
		for _, ts := range st.Topics {
			newer = newer || later(ts)
		}
		if !newer {
			st.Apply(typ, "", nil, seq, occurred, catalog)
			return true
		}
		keys = catalog
	}
	changed := false
	for _, k := range keys {
		if ts, ok := st.Decide(k); ok && later(ts) {
			continue
		}
		st.Apply(typ, "", []string{k}, seq, occurred, catalog)
		changed = true
	}
	return changed
}
