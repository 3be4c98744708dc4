package outbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/consentry/consentry/store"
)

// send posts one signed message and returns the receiver's status.
func (o *Outbox) send(sub *store.Subscription, msgID string, at time.Time, body []byte) (int, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	sig, err := Sign(sub.Secret, msgID, ts, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Consentry-Webhooks/1")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	o.mu.Lock()
	client := o.client
	o.mu.Unlock()
	if client == nil {
		client = Client(false)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, sendError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// sendError keeps the attempt log readable: the cause without the URL
// (already shown with the subscription).
func sendError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer within " + timeout.String())
	}
	return err
}

// Sign is the Standard Webhooks signature: "v1," and the base64
// HMAC-SHA256, keyed with the secret's bytes, of "id.timestamp.body".
func Sign(secret, msgID, ts string, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", errors.New("unreadable subscription secret")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// errPrivateAddress is refused at dial time, after DNS, so a name that
// resolved to a public address when the subscription was made cannot be
// pointed at the internal network later (DNS rebinding).
var errPrivateAddress = errors.New("the receiver's address is loopback, private or link-local; refused (see --webhook-allow-private)")

// Client sends deliveries: no proxy from the environment (it would hide
// the address dialled), no redirects (a 3xx is a failure), and the
// address checked on every dial unless private receivers are allowed.
func Client(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || forbidden(ip) {
				return errPrivateAddress
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
			ResponseHeaderTimeout: timeout, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}

var (
	sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT
	thisNetwork        = netip.MustParsePrefix("0.0.0.0/8")
)

// forbidden: addresses a webhook must not reach by default.
func forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		sharedAddressSpace.Contains(ip) || thisNetwork.Contains(ip)
}

// URLError refuses a subscription URL; Reason says why, for the url field.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return "url " + e.Reason }

// CheckURL validates a subscription URL and, unless private receivers
// are allowed, refuses one whose host resolves to a forbidden address.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return &URLError{"must be an absolute http(s) URL"}
	}
	if u.User != nil {
		return &URLError{"must not carry a user name or password"}
	}
	if u.Fragment != "" {
		return &URLError{"must not have a #fragment"}
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return &URLError{"the host name does not resolve"}
		}
		addrs = ips
	}
	for _, ip := range addrs {
		if forbidden(ip) {
			return &URLError{"resolves to a loopback, private or link-local address (" + ip.Unmap().String() + "); the operator can allow such receivers with --webhook-allow-private"}
		}
	}
	return nil
}
