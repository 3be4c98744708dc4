package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// appendCanonical must produce exactly the bytes encoding/json makes of the
// event, for every kind of value a body can hold.
func TestAppendCanonicalMatchesJSON(t *testing.T) {
	bodies := []eventBody{
		{Type: TypeOptIn, Subject: "00ff", Topics: []string{}, Source: "api", PIISHA256: "ab"},
		{Type: TypeOptOut, Status: StatePending, Subject: "53f7", Topics: []string{"marketing", "orders"},
			Source: "web", Campaign: `black "friday" <&> \ é 🎉`, LinkID: "lnk_0000001", NoticeSHA256: "cd",
			NoticeVersion: "v1\n2", NoticeLocale: "pt-BR", Reason: "line\u2028break", PIISHA256: "ef"},
	}
	times := []time.Time{
		time.Date(2026, 11, 24, 22, 57, 58, 37_000_000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100_000_000, time.UTC),
	}
	for _, body := range bodies {
		for _, at := range times {
			for _, seq := range []uint64{1, 42, 1 << 40} {
				prev := sha256.Sum256([]byte{byte(seq)})
				encoded, err := marshalCanonical(body)
				if err != nil {
					t.Fatal(err)
				}
				got := appendCanonical(nil, seq, encoded, at, prev)
				core := eventCore{ID: eventID(seq), Seq: seq, eventBody: body, At: at, PrevHash: hex.EncodeToString(prev[:])}
				want, err := marshalCanonical(core)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("canonical bytes differ:\n got %s\nwant %s", got, want)
				}
			}
		}
	}
}

// The stored contact state reads back as written, and damaged bytes are
// an error, never a silently empty (consenting) state.
func TestContactStateRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123_000_000, time.UTC)
	st := contactState{Topics: map[string]topicState{
		"orders":    {State: StateOptedIn, Seq: 7, At: at},
		"marketing": {State: StateOptedOut, Seq: 9, At: at.Add(time.Second)},
		allTopics:   {State: StatePending, Seq: 1 << 40, At: at},
	}, Held: []string{"orders", "delivery"}}
	b := st.encode()
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 3 || got.Topics["marketing"] != st.Topics["marketing"] || got.Topics[allTopics] != st.Topics[allTopics] ||
		len(got.Held) != 2 || got.Held[1] != "delivery" {
		t.Fatalf("round trip: %+v", got)
	}
	if empty, err := decodeState(nil); err != nil || len(empty.Topics) != 0 {
		t.Fatalf("no state: %+v, %v", empty, err)
	}
	for i := 1; i < len(b); i++ {
		if _, err := decodeState(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := decodeState([]byte(`{"t":{}}`)); err == nil {
		t.Fatal("a JSON value read as state")
	}
}
