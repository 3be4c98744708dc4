package capture

import (
	"io"
	"strings"
	"testing"
)

func TestLinkKeyRotationAndRetirement(t *testing.T) {
	a := lnkNewApp(t)
	old := a.createLink(map[string]any{})
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatal(err)
	}
	fresh := a.createLink(map[string]any{})
	lOld, _ := a.svc.LinkByID(old.ID)
	lNew, _ := a.svc.LinkByID(fresh.ID)
	if lOld.KeyID != 1 || lNew.KeyID != 2 {
		t.Fatalf("key ids %d, %d; want 1, 2", lOld.KeyID, lNew.KeyID)
	}
	for _, v := range []LinkView{old, fresh} {
		a.do("GET", lnkPath(t, v), nil).must(t, 302)
	}
	// The signing key cannot be retired; an unknown one is 404.
	if err := a.svc.RetireLinkKey(2); err == nil || !strings.Contains(err.Error(), "rotate") {
		t.Fatalf("retiring the signing key: %v", err)
	}
	a.do("DELETE", "/v1/link-keys/77", nil).wantError(t, 404, "not_found", "")
	a.do("DELETE", "/v1/link-keys/1", nil).must(t, 200)
	a.do("GET", lnkPath(t, old), nil).must(t, 404)
	a.do("GET", lnkPath(t, fresh), nil).must(t, 302)
	if _, _, ok := a.svc.FindLinkCode("code " + old.Code); ok {
		t.Fatal("FindLinkCode accepted a retired key's code")
	}

	// Keys persist: a new service on the same file verifies what the old
	// one signed, and the routes show the ring.
	keys := string(a.do("GET", "/v1/link-keys", nil).must(t, 200))
	if !strings.Contains(keys, `"id":2,`) || !strings.Contains(keys, `"signing":true`) || strings.Contains(keys, `"key"`) {
		t.Fatalf("keys listing %s", keys)
	}
	a.do("POST", "/v1/link-keys", nil).must(t, 201)
	cfg, _ := ParseServeConfig([]string{"--db", a.db}, func(string) string { return "" }, io.Discard)
	a.svc.FlushScans()
	a.app.Shutdown()
	a.st.Close()
	b := lnkOpenApp(t, a.db, cfg)
	if _, _, ok := b.svc.verifyCode(fresh.Code); !ok {
		t.Fatal("after reopening, a key-2 code does not verify")
	}
	if _, _, ok := b.svc.verifyCode(old.Code); ok {
		t.Fatal("after reopening, a retired key's code verifies")
	}
	infos, _ := b.svc.LinkKeys()
	if len(infos) != 3 || !infos[2].Signing || !infos[0].Retired {
		t.Fatalf("keys after reopening %+v", infos)
	}
	if err := b.svc.RetireLinkKey(2); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.svc.verifyCode(fresh.Code); ok {
		t.Fatal("key 2 retired, its code still verifies")
	}
}

// Key ids are one byte: after 255 ids, retired ones are reused, and a
// reused id never verifies the codes of the key it replaced.
func TestLinkKeyIDsAreReused(t *testing.T) {
	a := lnkNewApp(t)
	first := a.createLink(map[string]any{})
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.RetireLinkKey(1); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 255; i++ {
		if err := a.svc.RotateLinkKey(); err != nil {
			t.Fatalf("rotation to id %d: %v", i, err)
		}
	}
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatalf("rotation reusing id 1: %v", err)
	}
	k, _ := a.svc.links().keyring()
	if k.Signing() != 1 {
		t.Fatalf("signing id %d, want the reused 1", k.Signing())
	}
	if _, _, ok := a.svc.verifyCode(first.Code); ok {
		t.Fatal("the old key-1 code verifies under the new key 1")
	}
	if err := a.svc.RotateLinkKey(); err == nil {
		t.Fatal("rotation with all 255 ids live succeeded")
	}
}
