package webhook

import (
	"reflect"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
)

// A number change copies every decision but pending opt-ins to the new
// number, oldest first, each named by the decision it copies.
func TestNumberCopies(t *testing.T) {
	base := ledger.Change{MessageID: "wamid.X", Source: SourceWhatsApp, UserID: "BR.1", Reason: "system",
		BusinessNumber: "+5511955550123", Evidence: ledger.Evidence{RawText: "changed"}}
	st := ledger.State{Topics: map[string]ledger.TopicState{
		"marketing":      {State: ledger.StateOptedOut, Seq: 9},
		ledger.AllTopics: {State: ledger.StateOptedIn, Seq: 3},
		"orders":         {State: ledger.StateOptedIn, Seq: 5},
		"delivery":       {State: ledger.StatePending, Seq: 7},
	}}
	copyOf := func(id, typ string, topics []string) ledger.Change {
		c := base
		c.MessageID, c.Type, c.Topics = id, typ, topics
		c.Phone, c.UserID, c.Reason = "+5511987652222", "", ReasonNumberChanged
		return c
	}
	want := []ledger.Change{
		copyOf("wamid.X|*|3", ledger.TypeOptIn, nil),
		copyOf("wamid.X|orders|5", ledger.TypeOptIn, []string{"orders"}),
		copyOf("wamid.X|marketing|9", ledger.TypeOptOut, []string{"marketing"}),
	}
	if got := NumberCopies(st, "+5511987652222", base); !reflect.DeepEqual(got, want) {
		t.Fatalf("copies:\n got %+v\nwant %+v", got, want)
	}
	if got := NumberCopies(ledger.State{}, "+5511987652222", base); len(got) != 0 {
		t.Fatalf("an unknown number copies %+v, want nothing", got)
	}
}
