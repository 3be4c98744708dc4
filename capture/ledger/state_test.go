package ledger

import (
	"slices"
	"testing"
	"time"
)

// Apply folds events into a contact's state as checks then read it: a
// global opt-out wins over earlier topic opt-ins and remembers them, a
// pending opt-in never downgrades a confirmed one, a confirmation
// confirms what is pending, and only opt-outs outlive erasure.
func TestStateApply(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	catalog := []string{"marketing", "orders"}
	st := State{Topics: map[string]TopicState{}}
	steps := []struct {
		typ, status string
		topics      []string
		want        map[string]string // topic → state after the step
		pending     []string
	}{
		{TypeOptIn, "", []string{"orders"}, map[string]string{"orders": StateOptedIn, "marketing": StateNoConsent}, nil},
		{TypeOptIn, StatePending, []string{"orders"}, map[string]string{"orders": StateOptedIn}, nil},
		{TypeOptOut, "", nil, map[string]string{"orders": StateOptedOut, "marketing": StateOptedOut, "new": StateOptedOut}, nil},
		{TypeOptIn, StatePending, []string{"marketing"}, map[string]string{"marketing": StatePending, "orders": StateOptedOut}, []string{"marketing"}},
		{TypeConfirm, "", nil, map[string]string{"marketing": StateOptedIn, "orders": StateOptedOut}, nil},
	}
	for i, s := range steps {
		seq := uint64(i + 1)
		st.Apply(s.typ, s.status, s.topics, seq, at.Add(time.Duration(seq)*time.Minute), catalog)
		for topic, want := range s.want {
			if got, _ := st.StateOf(topic); got != want {
				t.Fatalf("step %d (%s %v): %s is %s, want %s", seq, s.typ, s.topics, topic, got, want)
			}
		}
		if got := st.PendingTopics(); !slices.Equal(got, s.pending) {
			t.Fatalf("step %d: pending %v, want %v", seq, got, s.pending)
		}
		if seq == 3 && !slices.Equal(st.Held, []string{"orders"}) {
			t.Fatalf("global opt-out held %v, want [orders]", st.Held)
		}
	}
	kept, err := DecodeState(st.Suppression())
	if err != nil || len(kept.Topics) != 1 || kept.Topics[AllTopics].State != StateOptedOut {
		t.Fatalf("suppression kept %+v, %v", kept, err)
	}
	if (&State{Topics: map[string]TopicState{"orders": {State: StateOptedIn}}}).Suppression() != nil {
		t.Fatal("a state without opt-outs leaves a suppression entry")
	}
}

// ApplyImported decides by when consent was really given: an imported
// decision older than the current one, or an opt-in at the same moment
// as an opt-out, changes nothing; a newer one does.
func TestStateApplyImported(t *testing.T) {
	t2 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	catalog := []string{"orders"}
	fresh := func() State {
		return State{Topics: map[string]TopicState{"orders": {State: StateOptedOut, Seq: 1, At: t2}}}
	}
	cases := []struct {
		name     string
		typ      string
		occurred time.Time
		changed  bool
		want     string
	}{
		{"older opt-in", TypeOptIn, t2.Add(-time.Hour), false, StateOptedOut},
		{"opt-in at the same moment", TypeOptIn, t2, false, StateOptedOut},
		{"newer opt-in", TypeOptIn, t2.Add(time.Hour), true, StateOptedIn},
		{"newer global opt-out", TypeOptOut, t2.Add(time.Hour), true, StateOptedOut},
	}
	for _, tc := range cases {
		st := fresh()
		var topics []string
		if tc.typ == TypeOptIn {
			topics = []string{"orders"}
		}
		changed := st.ApplyImported(tc.typ, topics, 2, tc.occurred, catalog)
		got, since := st.StateOf("orders")
		if changed != tc.changed || got != tc.want {
			t.Errorf("%s: changed %v, orders %s; want %v, %s", tc.name, changed, got, tc.changed, tc.want)
		}
		if tc.changed && !since.Equal(tc.occurred) {
			t.Errorf("%s: decided at %v, want %v", tc.name, since, tc.occurred)
		}
	}
}
