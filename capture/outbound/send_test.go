package outbound

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSignStandardWebhooksExample: the example of the Standard Webhooks
// specification (secret, id, timestamp and body) signs to its published
// signature, and a changed body does not.
func TestSignStandardWebhooksExample(t *testing.T) {
	const secret, id, ts = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330"
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	for _, tc := range []struct {
		body string
		same bool
	}{
		{`{"test": 2432232314}`, true},
		{`{"test": 2432232315}`, false},
	} {
		got, err := Sign(secret, id, ts, []byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if (got == want) != tc.same {
			t.Errorf("%s: signature %s, published %s", tc.body, got, want)
		}
	}
	if _, err := Sign("whsec_not base64!", id, ts, nil); err == nil {
		t.Error("an unreadable secret signed")
	}
}

// TestCheckURL: loopback, private, link-local and malformed receivers are
// refused at creation, unless private receivers are allowed; a public
// address is accepted.
func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://93.184.215.14/hook", false, true},
		{"http://127.0.0.1:8080/hook", false, false},
		{"http://127.0.0.1:8080/hook", true, true},
		{"http://10.1.2.3/hook", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"http://[fe80::1]/hook", false, false},
		{"http://[::ffff:127.0.0.1]/", false, false},
		{"http://100.64.0.1/", false, false},
		{"http://0.0.0.0/", false, false},
		{"http://localhost/hook", false, false},
		{"ftp://example.com/", true, false},
		{"/relative", true, false},
		{"http://user:pw@93.184.215.14/", true, false},
		{"http://93.184.215.14/#frag", true, false},
	} {
		err := CheckURL(tc.url, tc.allowPrivate)
		var bad *URLError
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &bad)) {
			t.Errorf("%s (allow private %v): %v", tc.url, tc.allowPrivate, err)
		}
	}
}

// TestClientRefusesPrivateAddresses: the sending client refuses a
// loopback address at dial time whatever the name resolved to when the
// subscription was made (DNS rebinding); the allowing client reaches it.
func TestClientRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	_, err := Client(false).Post("http://localhost:"+port+"/", "application/json", strings.NewReader("{}"))
	if err == nil || !strings.Contains(err.Error(), "loopback, private or link-local") {
		t.Fatalf("dial to loopback: %v", err)
	}
	resp, err := Client(true).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("allowed client: %v", err)
	}
	resp.Body.Close()
}
