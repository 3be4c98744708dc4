package httpguard

import "testing"

// Behind --trusted-proxies the client is the right-most X-Forwarded-For
// entry that is not a trusted proxy: what the client wrote on the left
// never becomes its address (rate limits, evidence, scan counts).
func TestClientFromForwarded(t *testing.T) {
	trusted := parseProxySet([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"one proxy appended the client", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client wrote a fake left-most entry", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"two trusted proxies in the chain", []string{"6.6.6.6, 203.0.113.9, 10.1.2.3, 192.0.2.1"}, "203.0.113.9"},
		{"header given twice", []string{"6.6.6.6", "203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"spaces", []string{" 6.6.6.6 ,  203.0.113.9 "}, "203.0.113.9"},
		{"IPv6", []string{"2001:db8::1, 2a00:1450::5, 2001:db8::2"}, "2a00:1450::5"},
		{"only trusted proxies", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5"},
		{"garbage right of the client", []string{"203.0.113.9, not-an-ip"}, ""},
		{"garbage on the left is never reached", []string{"<script>, 203.0.113.9"}, "203.0.113.9"},
		{"empty", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var values [][]byte
			for _, v := range tc.values {
				values = append(values, []byte(v))
			}
			if got := clientFromForwarded(values, trusted); got != tc.want {
				t.Fatalf("client %q, want %q", got, tc.want)
			}
		})
	}
}
