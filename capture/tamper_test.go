package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
)

// fndTamperExport builds a six-event ledger through the API and returns
// its NDJSON export split into lines (the last is the checkpoint).
func fndTamperExport(t *testing.T) (*fndApp, []string) {
	a := fndNewApp(t)
	a.optIn("+5511987650001", "orders", "marketing")
	a.optIn("+5511987650002", "orders")
	a.optOut("+5511987650001", "marketing")
	a.optIn("+5511987650003", "orders")
	a.optOut("+5511987650002", "orders")
	a.optIn("+5511987650001", "delivery")
	lines := strings.Split(strings.TrimSuffix(string(a.export()), "\n"), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[6], `{"checkpoint":`) {
		t.Fatalf("export has %d lines", len(lines))
	}
	return a, lines
}

// fndVerifyLines runs both ledger.VerifyExport and RunVerify on the lines and
// returns the seq each reports (0 when it passes).
func fndVerifyLines(t *testing.T, lines []string, pub string) (uint64, string) {
	t.Helper()
	data := strings.Join(lines, "\n") + "\n"
	n, err := ledger.VerifyExport(strings.NewReader(data), pub)
	var seq uint64
	var ve *ledger.VerifyError
	switch {
	case err == nil:
	case errors.As(err, &ve):
		seq = ve.Seq
	default:
		t.Fatalf("VerifyExport returned %T %v", err, err)
	}
	path := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{path}
	if pub != "" {
		args = append(args, "--public-key", pub)
	}
	code := RunVerify(args, &stdout, &stderr)
	out := stdout.String()
	if err == nil {
		if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("OK %d events\n", n)) || !strings.Contains(out, "\nkey: ed25519:") {
			t.Fatalf("RunVerify = %d %q, ledger.VerifyExport passed with %d", code, out, n)
		}
	} else if code != 1 || !strings.HasPrefix(out, fmt.Sprintf("FAIL at seq %d: ", seq)) {
		t.Fatalf("RunVerify = %d %q, ledger.VerifyExport failed at %d: %v", code, out, seq, err)
	}
	return seq, out
}

func TestFndUntouchedExportVerifies(t *testing.T) {
	a, lines := fndTamperExport(t)
	if seq, out := fndVerifyLines(t, lines, ""); seq != 0 || !strings.HasPrefix(out, "OK 6 events\nkey: ") || !strings.Contains(out, "taken from the file") {
		t.Fatalf("untouched export: %q", out)
	}
	if seq, out := fndVerifyLines(t, lines, a.svc.PublicKey()); seq != 0 || !strings.HasPrefix(out, "OK 6 events\nkey: ") || !strings.Contains(out, "pinned with --public-key") {
		t.Fatalf("untouched export with its key: %q", out)
	}
	other := fndNewApp(t) // another instance: another signing key
	if seq, out := fndVerifyLines(t, lines, other.svc.PublicKey()); seq == 0 {
		t.Fatalf("verified with the wrong public key: %q", out)
	}
	// CRLF line ends (a file that went through another system) still verify.
	crlf := strings.Join(lines, "\r\n") + "\r\n"
	if n, err := ledger.VerifyExport(strings.NewReader(crlf), a.svc.PublicKey()); err != nil || n != 6 {
		t.Fatalf("CRLF export: %d, %v", n, err)
	}
}

func TestFndTamperedExportFailsAtTheRightSeq(t *testing.T) {
	_, lines := fndTamperExport(t)
	const n = 6
	replace := func(old, new string) func(string) (string, bool) {
		return func(line string) (string, bool) {
			if !strings.Contains(line, old) {
				return line, false
			}
			return strings.Replace(line, old, new, 1), true
		}
	}
	// Line edits, applied to every event line they fit.
	edits := []struct {
		name string
		edit func(string) (string, bool)
	}{
		{"topic orders→account", replace(`"orders"`, `"account"`)},
		{"topic marketing→feedback", replace(`"marketing"`, `"feedback"`)},
		{"topic added", replace(`"topics":[`, `"topics":["payments",`)},
		{"type", replace(`"type":"opt_out"`, `"type":"opt_in"`)},
		{"phone", replace(`"phone":"+55119876500`, `"phone":"+55119876599`)},
		{"ip in evidence", replace(`"ip":"203.0.113.7"`, `"ip":"203.0.113.8"`)},
		{"user agent in evidence", replace(`(fnd test)`, `(fnd tent)`)},
		{"evidence removed", replace(`"evidence":{`, `"evidence":{},"x":{`)},
		{"at", replace(`"at":"2`, `"at":"3`)},
		{"source", replace(`"source":"web"`, `"source":"sms"`)},
		{"seq", func(line string) (string, bool) {
			i := strings.Index(line, `"seq":`)
			return line[:i] + `"seq":9` + line[i+len(`"seq":`):], true
		}},
		{"hash", func(line string) (string, bool) { return fndFlipAfter(line, `"hash":"`), true }},
		{"prev_hash", func(line string) (string, bool) { return fndFlipAfter(line, `"prev_hash":"`), true }},
		{"pii_salt", func(line string) (string, bool) { return fndFlipAfter(line, `"pii_salt":"`), true }},
		{"field appended after the hash", func(line string) (string, bool) {
			return strings.TrimSuffix(line, "}") + `,"topics":["marketing"],"type":"opt_in"}`, true
		}},
		{"personal data dropped without erasure mark", func(line string) (string, bool) {
			i := strings.Index(line, `,"phone":`)
			return line[:i] + "}", true
		}},
		{"trailing space inside", replace(`,"hash":`, `, "hash":`)},
		{"half line", func(line string) (string, bool) { return line[:len(line)/2], true }},
	}
	for _, e := range edits {
		applied := 0
		for i := 0; i < n; i++ {
			mutated := append([]string{}, lines...)
			var ok bool
			if mutated[i], ok = e.edit(lines[i]); !ok {
				continue
			}
			applied++
			if seq, out := fndVerifyLines(t, mutated, ""); seq != uint64(i+1) {
				t.Errorf("%s at line %d: verify says %q, want seq %d", e.name, i+1, out, i+1)
			}
		}
		if applied == 0 {
			t.Errorf("%s: applied to no line", e.name)
		}
	}

	// Structural edits at every position.
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		deleted := append(append([]string{}, lines[:i]...), lines[i+1:]...)
		if got, out := fndVerifyLines(t, deleted, ""); got != seq {
			t.Errorf("line %d deleted: %q, want seq %d", seq, out, seq)
		}
		duplicated := append(append(append([]string{}, lines[:i+1]...), lines[i]), lines[i+1:]...)
		if got, out := fndVerifyLines(t, duplicated, ""); got != seq+1 {
			t.Errorf("line %d duplicated: %q, want seq %d", seq, out, seq+1)
		}
		truncated := append([]string{}, lines[:i]...)
		if got, out := fndVerifyLines(t, truncated, ""); got != seq {
			t.Errorf("truncated before line %d: %q, want seq %d", seq, out, seq)
		}
		cut := append(append([]string{}, lines[:i]...), lines[i][:len(lines[i])*2/3])
		if got, out := fndVerifyLines(t, cut, ""); got != seq {
			t.Errorf("truncated inside line %d: %q, want seq %d", seq, out, seq)
		}
		for j := i + 1; j < n; j++ {
			swapped := append([]string{}, lines...)
			swapped[i], swapped[j] = swapped[j], swapped[i]
			if got, out := fndVerifyLines(t, swapped, ""); got != seq {
				t.Errorf("lines %d and %d swapped: %q, want seq %d", seq, j+1, out, seq)
			}
		}
	}
	// Reversed order fails at the first line.
	reversed := append([]string{}, lines...)
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	if got, out := fndVerifyLines(t, reversed, ""); got != 1 {
		t.Errorf("reversed: %q", out)
	}

	// The checkpoint line.
	cp := lines[n]
	for name, edit := range map[string]string{
		"signature": fndFlipAfter(cp, `"signature":"`),
		"size":      strings.Replace(cp, `"size":6`, `"size":5`, 1),
		"head":      fndFlipAfter(cp, `"head":"`),
		"time":      strings.Replace(cp, `"at":"2`, `"at":"3`, 1),
		"key":       fndFlipAfter(cp, `"public_key":"`),
	} {
		mutated := append(append([]string{}, lines[:n]...), edit)
		if got, out := fndVerifyLines(t, mutated, ""); got == 0 {
			t.Errorf("checkpoint %s edited: %q", name, out)
		}
	}
	if got, out := fndVerifyLines(t, append(append([]string{}, lines...), lines[0]), ""); got == 0 {
		t.Errorf("line after the checkpoint: %q", out)
	}
	if got, out := fndVerifyLines(t, lines[:n], ""); got != n+1 {
		t.Errorf("checkpoint removed: %q", out)
	}
}

// fndFlipAfter changes the character right after marker (a hex or base64
// digit) to another one.
func fndFlipAfter(line, marker string) string {
	i := strings.Index(line, marker) + len(marker)
	c := byte('0')
	if line[i] == '0' {
		c = '1'
	}
	return line[:i] + string(c) + line[i+1:]
}
