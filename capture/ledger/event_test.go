package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"testing"
	"time"
)

// AppendCanonical must produce exactly the bytes encoding/json makes of the
// event, for every kind of value a body can hold.
func TestAppendCanonicalMatchesJSON(t *testing.T) {
	bodies := []Body{
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
				encoded, err := MarshalCanonical(body)
				if err != nil {
					t.Fatal(err)
				}
				got := AppendCanonical(nil, seq, encoded, at, prev)
				core := Core{ID: EventID(seq), Seq: seq, Body: body, At: at, PrevHash: hex.EncodeToString(prev[:])}
				want, err := MarshalCanonical(core)
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
	st := State{Topics: map[string]TopicState{
		"orders":    {State: StateOptedIn, Seq: 7, At: at},
		"marketing": {State: StateOptedOut, Seq: 9, At: at.Add(time.Second)},
		AllTopics:   {State: StatePending, Seq: 1 << 40, At: at},
	}, Held: []string{"orders", "delivery"}}
	b := st.Encode()
	got, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 3 || got.Topics["marketing"] != st.Topics["marketing"] || got.Topics[AllTopics] != st.Topics[AllTopics] ||
		len(got.Held) != 2 || got.Held[1] != "delivery" {
		t.Fatalf("round trip: %+v", got)
	}
	if empty, err := DecodeState(nil); err != nil || len(empty.Topics) != 0 {
		t.Fatalf("no state: %+v, %v", empty, err)
	}
	for i := 1; i < len(b); i++ {
		if _, err := DecodeState(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := DecodeState([]byte(`{"t":{}}`)); err == nil {
		t.Fatal("a JSON value read as state")
	}
}

// FuzzDecodeState: stored state bytes, however damaged, decode to an
// error or to a state that encodes and decodes back to itself.
func FuzzDecodeState(f *testing.F) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123_000_000, time.UTC)
	st := State{Topics: map[string]TopicState{
		"orders":   {State: StateOptedIn, Seq: 7, At: at},
		AllTopics:  {State: StateOptedOut, Seq: 9, At: at},
		"birthday": {State: StatePending, Seq: 1 << 40, At: at.Add(-time.Hour)},
	}, Held: []string{"orders"}}
	f.Add(st.Encode())
	f.Add([]byte{stateVersion, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeState(b)
		if err != nil {
			return
		}
		again, err := DecodeState(got.Encode())
		if err != nil {
			t.Fatalf("%x: re-encoded state does not decode: %v", b, err)
		}
		if !maps.Equal(got.Topics, again.Topics) || !slices.Equal(got.Held, again.Held) {
			t.Fatalf("%x: round trip changed the state:\n%+v\n%+v", b, got, again)
		}
	})
}
