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
