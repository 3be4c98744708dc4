package capture

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/store/storetest"
)

// A keyed opt-in's answer holds the number and the evidence. The answer is
// kept for replays without them (the ledger rebuilds it), so a replay after
// erasure answers the erased event and the file keeps neither.
func TestErasureReachesIdempotentAnswers(t *testing.T) {
	a := fndNewApp(t)
	const phone, ip, agent = "+5511987650042", "203.0.113.77", "Mozilla/5.0 (Erasure Probe 42)"
	optIn := `{"phone":"` + phone + `","topics":["orders"],"notice":{"text":"` + fndNotice + `"},` +
		`"evidence":{"ip":"` + ip + `","user_agent":"` + agent + `","page_url":"https://shop.example/checkout?who=42"}}`
	optOut := `{"phone":"` + phone + `","topics":["marketing"],"raw_text":"sem promo, obrigado 42"}`
	personal := []string{phone, "5511987650042", ip, agent, "who=42", "obrigado 42"}

	first := reqSend(t, a, "/v1/optins", fndAdminKey, "checkout-42", optIn).must(t, http.StatusCreated)
	if !bytes.Contains(first, []byte(ip)) || !bytes.Contains(first, []byte(agent)) {
		t.Fatalf("the first answer lacks the evidence: %s", first)
	}
	reqSend(t, a, "/v1/optouts", fndAdminKey, "stop-42", optOut).must(t, http.StatusCreated)
	// Before erasure a replay is the first answer, byte for byte.
	again := reqSend(t, a, "/v1/optins", fndAdminKey, "checkout-42", optIn)
	if !bytes.Equal(again.must(t, http.StatusCreated), first) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay before erasure: %s", fndShort(again.body))
	}

	a.do(http.MethodDelete, "/v1/contacts/"+phone, fndAdminKey, nil).must(t, http.StatusOK)
	head, _ := a.st.Head()

	for _, c := range []struct{ path, key, body, hash string }{
		{"/v1/optins", "checkout-42", optIn, `"hash":"`},
		{"/v1/optouts", "stop-42", optOut, `"type":"opt_out"`},
	} {
		r := reqSend(t, a, c.path, fndAdminKey, c.key, c.body)
		body := r.must(t, http.StatusCreated)
		if r.header.Get("Idempotent-Replayed") != "true" || !bytes.Contains(body, []byte(`"erased":true`)) ||
			!bytes.Contains(body, []byte(c.hash)) {
			t.Fatalf("%s replay after erasure: %s %v", c.path, fndShort(body), r.header)
		}
		for _, s := range append(personal, "pii_salt", "evidence") {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("%s replay after erasure still answers %q: %s", c.path, s, body)
			}
		}
		// The same key with another body is still refused.
		other := strings.Replace(c.body, `"`+phone+`"`, `"+5511987650043"`, 1)
		fndExpectError(t, reqSend(t, a, c.path, fndAdminKey, c.key, other), http.StatusConflict, "conflict", "")
	}
	if h, _ := a.st.Head(); h != head {
		t.Fatalf("replays after erasure recorded events: head %d, was %d", h.Seq, head.Seq)
	}
	// The answers are kept, without their bodies.
	for _, c := range [][2]string{{"/v1/optins", "checkout-42"}, {"/v1/optouts", "stop-42"}} {
		kept, ok, err := a.st.IdempotentAnswer(idempotencyStoreKey(envAdminKeyID, "POST", c[0], c[1]))
		if err != nil || !ok || kept.Status != http.StatusCreated || len(kept.Body) != 0 {
			t.Fatalf("%s answer kept: %v %v status %d body %q", c[0], ok, err, kept.Status, kept.Body)
		}
	}

	if storetest.OnPostgres() {
		return // the bytes of a bbolt file follow
	}
	path := a.st.Location()
	a.close()
	// The answers are JSON with the body in base64: look for that too.
	forms := personal
	for _, p := range personal {
		forms = append(forms, base64Forms(p)...)
	}
	wantFileFree(t, path, forms...)
}

// base64Forms returns what is certain to appear of s in base64 text at each
// of the three alignments s can start at.
func base64Forms(s string) []string {
	var out []string
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, pad), s...))
		from := 0
		if pad > 0 {
			from = 4 // the first group mixes the padding with s
		}
		if to := len(enc) - 4; to-from >= 8 { // the last group may end mid-way; shorter is too common
			out = append(out, enc[from:to])
		}
	}
	return out
}
