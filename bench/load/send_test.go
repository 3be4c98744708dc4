package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// echoServer answers what the senders are checked against: /echo returns
// the request's method, auth, content type, signature header and body;
// /redirect redirects to /echo; /teapot answers 418; /big answers more
// than the fast path accepts.
func echoServer(t *testing.T) *env {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Consentry-Code", "abc123")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, strings.Join([]string{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), r.Header.Get("X-Hub-Signature-256"), string(body)}, "|"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/echo")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, `{"error":"short and stout"}`)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, fastMaxAnswer+1))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{base: srv.URL}
	if err := e.openClients(8); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSendersCheckTheSame runs every case through both senders: the fast
// path must be exactly as strict as net/http.
func TestSendersCheckTheSame(t *testing.T) {
	e := echoServer(t)
	senders := []struct {
		name string
		send func(context.Context, request) (http.Header, int64, error)
	}{
		{"net/http", e.send},
		{"fasthttp", e.sendFast},
	}
	cases := []struct {
		name       string
		req        request
		wantErr    string // substring of the error; "" for success
		wantOut    string
		wantHeader map[string]string
	}{
		{
			name: "body, key and custom header sent; answer copied",
			req: request{method: "POST", path: "/echo?phone=%2B5511", key: "k1", body: []byte(`{"a":1}`), want: 201,
				header: map[string]string{"X-Hub-Signature-256": "sha256=ff"}, readHeaders: []string{"X-Consentry-Code", "Content-Type"}},
			wantOut:    "POST|/echo?phone=%2B5511|Bearer k1|application/json|sha256=ff|{\"a\":1}",
			wantHeader: map[string]string{"X-Consentry-Code": "abc123", "Content-Type": "text/plain"},
		},
		{
			name:    "no key, no body",
			req:     request{method: "GET", path: "/echo", want: 201},
			wantOut: "GET|/echo||||",
		},
		{
			name:    "unexpected status is an error with the answer's start",
			req:     request{method: "GET", path: "/teapot", want: 200},
			wantErr: `GET /teapot: 418 {"error":"short and stout"}`,
		},
		{
			name:    "success status is not enough: it must be the one wanted",
			req:     request{method: "GET", path: "/echo", want: 200},
			wantErr: "GET /echo: 201 GET|/echo",
		},
		{
			name:       "redirect answered, not followed",
			req:        request{method: "GET", path: "/redirect", want: http.StatusFound, client: e.noRedirect, readHeaders: []string{"Location"}},
			wantHeader: map[string]string{"Location": "/echo"},
		},
	}
	for _, s := range senders {
		for _, c := range cases {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				var out bytes.Buffer
				r := c.req
				r.out = &out
				hdr, n, err := s.send(context.Background(), r)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Fatalf("error %v, want one containing %q", err, c.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if out.String() != c.wantOut || n != int64(out.Len()) {
					t.Errorf("answer %q (%d bytes counted), want %q", out.String(), n, c.wantOut)
				}
				for k, v := range c.wantHeader {
					if got := hdr.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
			})
		}
	}
}

func TestSendFastRefusesWhatItShouldNot(t *testing.T) {
	e := echoServer(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		req  request
	}{
		{"answer too big to buffer", context.Background(), request{method: "GET", path: "/big", want: 200}},
		{"cancelled run", cancelled, request{method: "GET", path: "/echo", want: 201}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := e.sendFast(c.ctx, c.req); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// BenchmarkSend compares the two senders on a small GET. Allocations
// include the test server's own.
func BenchmarkSend(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	e := &env{base: srv.URL}
	if err := e.openClients(8); err != nil {
		b.Fatal(err)
	}
	r := request{method: "GET", path: "/healthz", key: "bench", want: 200}
	for _, s := range []struct {
		name string
		send func(context.Context, request) (http.Header, int64, error)
	}{{"net-http", e.send}, {"fasthttp", e.sendFast}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.send(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
