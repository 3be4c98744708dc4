package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// The throughput scenarios send their requests with fasthttp rather than
// net/http: the client runs on the same two cores as the server, and every
// cycle it spends per request is one the server does not get. fasthttp
// pools its request and response objects and does not follow redirects.
// It reads a whole answer into memory, so only calls with small answers go
// through it; the export and everything else stay on net/http (env.send).

const (
	// requestTimeout bounds every call, as http.Client.Timeout does for
	// the net/http client.
	requestTimeout = time.Minute
	// fastMaxAnswer is the largest answer the fast path accepts; anything
	// bigger is a mistake in the choice of path and fails loudly.
	fastMaxAnswer = 8 << 20
)

// newFastClient returns a keep-alive client for the server at base (a
// loopback URL, already checked) with room for conns connections.
func newFastClient(base string, conns int) (*fasthttp.HostClient, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-url %q: %v", base, err)
	}
	return &fasthttp.HostClient{
		Addr:     u.Host,
		Name:     "consentry-load",
		MaxConns: conns,
		// A worker never waits for a connection (there are more than
		// workers); the wait is bounded anyway.
		MaxConnWaitTimeout: requestTimeout,
		// Closed before the server's 90 s idle timeout, so the client never
		// writes into a connection the server has dropped.
		MaxIdleConnDuration: time.Minute,
		MaxResponseBodySize: fastMaxAnswer,
		// A retried call would turn a failure into a success; net/http
		// does not retry POSTs either. Every error is counted.
		MaxIdemponentCallAttempts: 1,
		// Paths and queries are sent exactly as the scenario built them.
		DisablePathNormalizing: true,
	}, nil
}

// sendFast is send through fasthttp, with the same checks: a status other
// than r.want is an error (with the start of the answer), the answer is
// copied to r.out. It returns only the answer headers named in
// r.readHeaders. r.client is ignored: fasthttp never follows redirects, so
// every call behaves like e.noRedirect.
func (e *env) sendFast(ctx context.Context, r request) (http.Header, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)

	client := e.fast
	if len(e.others) > 0 {
		if i := e.nextFast.Add(1) % uint64(len(e.others)+1); i > 0 {
			client = e.others[i-1]
		}
	}
	req.Header.SetMethod(r.method)
	req.SetRequestURI(r.path)
	req.Header.SetHost(client.Addr)
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(r.body) // not copied: the caller does not touch it until we return
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if err := client.DoDeadline(req, resp, deadline); err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	var hdr http.Header
	if len(r.readHeaders) > 0 {
		hdr = make(http.Header, len(r.readHeaders))
		for _, name := range r.readHeaders {
			if v := resp.Header.Peek(name); len(v) > 0 {
				hdr.Set(name, string(v))
			}
		}
	}
	body := resp.Body()
	if status := resp.StatusCode(); status != r.want {
		return hdr, 0, fmt.Errorf("%s %s: %d %s", r.method, r.path, status, body[:min(len(body), 512)])
	}
	if r.out == nil || r.out == io.Discard {
		return hdr, int64(len(body)), nil
	}
	n, err := r.out.Write(body)
	return hdr, int64(n), err
}
