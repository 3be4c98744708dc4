package httpguard

import (
	"net"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// proxySet is the parsed --trusted-proxies list.
type proxySet []*net.IPNet

func parseProxySet(list []string) proxySet {
	var out proxySet
	for _, p := range list {
		if _, n, err := net.ParseCIDR(p); err == nil {
			out = append(out, n)
		} else if ip := net.ParseIP(p); ip != nil {
			bits := 8 * len(ip.To16())
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		}
	}
	return out
}

func (ps proxySet) contains(ip net.IP) bool {
	for _, n := range ps {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// clientFromForwarded picks the client's address from X-Forwarded-For
// values, read right to left: each proxy appends the address it received
// the request from, so the right-most entry that is not a trusted proxy is
// the first one no trusted party vouches for, and everything left of it
// was written by the client and proves nothing. When every entry is a
// trusted proxy, the left-most is taken. An unreadable entry ends the walk:
// nothing left of it can be trusted, and "" (no client known) is returned.
func clientFromForwarded(values [][]byte, trusted proxySet) string {
	var entries []string
	for _, v := range values {
		for _, e := range strings.Split(string(v), ",") {
			entries = append(entries, strings.TrimSpace(e))
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		ip := net.ParseIP(entries[i])
		if ip == nil {
			return ""
		}
		if !trusted.contains(ip) || i == 0 {
			return ip.String()
		}
	}
	return ""
}

// ForwardedClient is middleware, mounted first when proxies are trusted
// (list: addresses and CIDR ranges, as --trusted-proxies takes them). On
// a request from a trusted proxy it replaces X-Forwarded-For with the one
// address clientFromForwarded picks, which Fiber's c.IP() then returns
// (the app trusts the same proxies in its fiber.Config); with none, the
// proxy's own address is used. Fiber on its own would take the left-most
// entry, which the client writes.
func ForwardedClient(list []string) fiber.Handler {
	trusted := parseProxySet(list)
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		if !trusted.contains(c.Context().RemoteIP()) {
			return c.Next() // c.IP() ignores the header
		}
		if client := clientFromForwarded(h.PeekAll(fiber.HeaderXForwardedFor), trusted); client != "" {
			h.Set(fiber.HeaderXForwardedFor, client)
		} else {
			h.Del(fiber.HeaderXForwardedFor)
		}
		return c.Next()
	}
}
