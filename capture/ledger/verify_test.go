package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// chainExport writes an export of n events the way the service does, from
// this package's pieces alone: canonical bytes chained by prev_hash, lines
// with their personal data (event 2 erased), and a signed checkpoint.
func chainExport(t *testing.T, n int) (lines []string, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var prev [32]byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		pii := Personal{Salt: "5a17", Phone: "+5511987654321", Evidence: Evidence{PageURL: "https://shop.example/?a=1&b=<2>", RawText: "SIM \u2028 ✓"}}
		digest, _, err := PersonalDigest(pii)
		if err != nil {
			t.Fatal(err)
		}
		body, err := MarshalCanonical(Body{Type: TypeOptIn, Subject: "00ff", Topics: []string{"orders"}, Source: "web", PIISHA256: digest})
		if err != nil {
			t.Fatal(err)
		}
		canonical := AppendCanonical(nil, seq, body, at.Add(time.Duration(seq)*time.Second), prev)
		hash := sha256.Sum256(canonical)
		line := AppendLine(nil, canonical, hash, &pii)
		if seq == 2 {
			line = AppendLine(nil, canonical, hash, nil)
		}
		lines = append(lines, string(line))
		prev = hash
	}
	cp := Checkpoint{Size: uint64(n), Head: hex.EncodeToString(prev[:]), At: at, KeyID: KeyID(pk), PublicKey: base64.StdEncoding.EncodeToString(pk)}
	cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(sk, CheckpointMessage(cp.Size, cp.Head, cp.At)))
	b, err := json.Marshal(map[string]Checkpoint{"checkpoint": cp})
	if err != nil {
		t.Fatal(err)
	}
	return append(lines, string(b)), cp.PublicKey
}

// An export built from the ledger's formats verifies, and each kind of
// damage is caught at the seq where it is.
func TestVerifyExportOfAChain(t *testing.T) {
	lines, pub := chainExport(t, 4)
	rep, err := VerifyExportReport(strings.NewReader(strings.Join(lines, "\n")+"\n"), pub)
	if err != nil || rep.Events != 4 || rep.FirstSeq != 1 || rep.LastSeq != 4 || rep.PrevHash != ZeroHash || !rep.Pinned {
		t.Fatalf("untouched export: %+v, %v", rep, err)
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name string
		edit func([]string) []string
		key  string
		want uint64
	}{
		{"topic changed", func(l []string) []string { l[2] = strings.Replace(l[2], `"orders"`, `"ordens"`, 1); return l }, "", 3},
		{"phone changed", func(l []string) []string {
			l[0] = strings.Replace(l[0], "+5511987654321", "+5511987654320", 1)
			return l
		}, "", 1},
		{"line dropped", func(l []string) []string { return append(l[:1], l[2:]...) }, "", 2},
		{"key added after the hash", func(l []string) []string { l[3] = strings.TrimSuffix(l[3], "}") + `,"topics":["all"]}`; return l }, "", 4},
		{"erasure mark removed", func(l []string) []string { l[1] = strings.Replace(l[1], `,"erased":true`, ``, 1); return l }, "", 2},
		{"checkpoint cut off", func(l []string) []string { return l[:4] }, "", 5},
		{"someone else's key", func(l []string) []string { return l }, base64.StdEncoding.EncodeToString(otherPub), 4},
	}
	for _, tc := range cases {
		damaged := tc.edit(append([]string{}, lines...))
		_, err := VerifyExport(strings.NewReader(strings.Join(damaged, "\n")+"\n"), tc.key)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Seq != tc.want {
			t.Errorf("%s: %v, want a failure at seq %d", tc.name, err, tc.want)
		}
	}
	if !bytes.Contains([]byte(lines[1]), []byte(`"erased":true`)) {
		t.Fatalf("event 2 is not erased: %s", lines[1])
	}
}
