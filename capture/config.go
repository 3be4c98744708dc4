package capture

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/store/backend"
)

// Config is the start-up configuration of `consentry serve`, read from
// flags and CONSENTRY_* environment variables (flags win).
type Config struct {
	Addr            string
	DB              string
	PublicURL       string
	BusinessName    string
	WANumber        string
	DefaultRegion   string
	AdminKey        string
	WAAppSecrets    []string
	WAVerifyToken   string
	WAToken         string
	WAPhoneNumberID string
	GraphURL        string
	LogLevel        string
	// TrustedProxies are the addresses (IPs or CIDRs) of reverse proxies
	// whose X-Forwarded-For is believed for the client's IP.
	TrustedProxies []string
	// WebhookAllowPrivate lets outbound webhook subscriptions reach
	// loopback, private and link-local addresses (refused by default).
	WebhookAllowPrivate bool

	// given records which settings were set by a flag or variable, so they
	// override (and are saved over) the stored settings.
	given map[string]bool
}

type configOption struct {
	flag, env, usage, def string
	target                func(*Config) *string
}

var configOptions = []configOption{
	{"addr", "CONSENTRY_ADDR", "listen address", "127.0.0.1:8080", func(c *Config) *string { return &c.Addr }},
	{"db", "CONSENTRY_DB", "bbolt database file, or a postgres:// URL", "./consentry.db", func(c *Config) *string { return &c.DB }},
	{"public-url", "CONSENTRY_PUBLIC_URL", "URL customers reach the service at (default http://<addr>)", "", func(c *Config) *string { return &c.PublicURL }},
	{"business-name", "CONSENTRY_BUSINESS_NAME", "business name shown in notices and messages", "", func(c *Config) *string { return &c.BusinessName }},
	{"wa-number", "CONSENTRY_WA_NUMBER", "the business's WhatsApp number", "", func(c *Config) *string { return &c.WANumber }},
	{"default-region", "CONSENTRY_DEFAULT_REGION", "region for numbers written without country code (default BR)", "", func(c *Config) *string { return &c.DefaultRegion }},
	{"wa-verify-token", "CONSENTRY_WA_VERIFY_TOKEN", "webhook verification token", "", func(c *Config) *string { return &c.WAVerifyToken }},
	{"wa-token", "CONSENTRY_WA_TOKEN", "Cloud API access token for confirmation replies", "", func(c *Config) *string { return &c.WAToken }},
	{"wa-phone-number-id", "CONSENTRY_WA_PHONE_NUMBER_ID", "Cloud API phone number id for replies", "", func(c *Config) *string { return &c.WAPhoneNumberID }},
	{"graph-url", "CONSENTRY_GRAPH_URL", "Graph API base URL", "https://graph.facebook.com/v21.0", func(c *Config) *string { return &c.GraphURL }},
	{"log-level", "CONSENTRY_LOG_LEVEL", "debug, info, warn or error (debug logs every consent change)", "info", func(c *Config) *string { return &c.LogLevel }},
}

// ParseServeConfig reads the configuration from args and the environment
// and validates it; errors name the flag at fault.
func ParseServeConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Config{given: map[string]bool{}}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, o := range configOptions {
		fs.StringVar(o.target(&c), o.flag, o.def, o.usage+" ($"+o.env+")")
	}
	var secrets, proxies string
	fs.StringVar(&secrets, "wa-app-secret", "", "Meta app secret(s), comma-separated during rotation ($CONSENTRY_WA_APP_SECRET)")
	fs.StringVar(&proxies, "trusted-proxies", "", "reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For gives the client IP ($CONSENTRY_TRUSTED_PROXIES)")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", false, "let webhook subscriptions reach loopback, private and link-local addresses ($CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range configOptions {
		if set[o.flag] {
			c.given[o.flag] = true
		} else if v := getenv(o.env); v != "" {
			*o.target(&c) = v
			c.given[o.flag] = true
		}
	}
	if !set["wa-app-secret"] {
		secrets = getenv("CONSENTRY_WA_APP_SECRET")
	}
	c.WAAppSecrets = splitList(secrets)
	if !set["trusted-proxies"] {
		proxies = getenv("CONSENTRY_TRUSTED_PROXIES")
	}
	c.TrustedProxies = splitList(proxies)
	c.AdminKey = getenv("CONSENTRY_ADMIN_KEY")
	if !set["webhook-allow-private"] {
		switch v := strings.ToLower(getenv("CONSENTRY_WEBHOOK_ALLOW_PRIVATE")); v {
		case "", "0", "false":
		case "1", "true":
			c.WebhookAllowPrivate = true
		default:
			return c, fmt.Errorf("CONSENTRY_WEBHOOK_ALLOW_PRIVATE %q: want 1 or 0", v)
		}
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" {
		return fmt.Errorf("--addr %q: want host:port, like 127.0.0.1:8080", c.Addr)
	}
	if c.DB == "" {
		return errors.New("--db: a database file path or a postgres:// URL is required")
	}
	if err := backend.CheckTarget(c.DB); err != nil {
		return fmt.Errorf("--db: %v", err)
	}
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL(c.Addr)
	} else if err := checkPublicURL(c.PublicURL); err != nil {
		return fmt.Errorf("--public-url %q: %v", c.PublicURL, err)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.given["business-name"] && (len(strings.TrimSpace(c.BusinessName)) < 2 || len(c.BusinessName) > 80 || !isSafeText(c.BusinessName)) {
		return fmt.Errorf("--business-name %q: 2 to 80 printable characters", c.BusinessName)
	}
	if c.DefaultRegion != "" && !isKnownRegion(strings.ToUpper(c.DefaultRegion)) {
		return fmt.Errorf("--default-region %q: not a known region code like BR, US, ES", c.DefaultRegion)
	}
	if c.WANumber != "" {
		region := strings.ToUpper(c.DefaultRegion)
		if region == "" {
			region = "BR"
		}
		if _, err := phone.Normalize(c.WANumber, region); err != nil {
			return fmt.Errorf("--wa-number %q: %v", c.WANumber, err)
		}
	}
	if c.AdminKey != "" && len(c.AdminKey) < 24 {
		return errors.New("CONSENTRY_ADMIN_KEY: must be at least 24 characters")
	}
	if u, err := url.Parse(c.GraphURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--graph-url %q: want an absolute http(s) URL", c.GraphURL)
	}
	if _, err := c.SlogLevel(); err != nil {
		return err
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return fmt.Errorf("--trusted-proxies %q: want IP addresses or CIDR ranges like 10.0.0.0/8", p)
			}
		}
	}
	if (c.WAToken == "") != (c.WAPhoneNumberID == "") {
		return errors.New("--wa-token and --wa-phone-number-id go together: give both or neither")
	}
	return nil
}

// applyTo writes the given options over stored settings.
func (c *Config) applyTo(s *Settings) {
	if c.given["business-name"] {
		s.BusinessName = strings.TrimSpace(c.BusinessName)
	}
	if c.given["wa-number"] {
		s.WANumber = c.WANumber
	}
	if c.given["default-region"] {
		s.DefaultRegion = strings.ToUpper(c.DefaultRegion)
	}
	// public_url is stored only when given explicitly; otherwise it is
	// http://<addr> of this start.
	switch {
	case c.given["public-url"]:
		s.PublicURL, s.publicURLSet = c.PublicURL, true
	case !s.publicURLSet:
		s.PublicURL = c.PublicURL
	}
}

// Listening records the address the server really listens on: with port
// 0 the system picks one, and the default public_url must name it.
func (c *Config) Listening(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || c.given["public-url"] {
		return
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port != "0" {
		return
	}
	c.Addr = net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	c.PublicURL = defaultPublicURL(c.Addr)
}

// defaultPublicURL is http://<addr>, with a wildcard host written as
// 127.0.0.1 (a URL needs a host to reach).
func defaultPublicURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// IsLoopbackURL reports a URL whose host is this machine (localhost or a
// loopback address): codes printed with it do not open on a phone.
func IsLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackWarning is the warning printed when public_url is a loopback
// address, or "" when it is not.
func LoopbackWarning(publicURL string) string {
	if !IsLoopbackURL(publicURL) {
		return ""
	}
	return "warning: public_url " + publicURL + " is a loopback address: links and QR codes made with it open only on this machine, " +
		"not on customers' phones. Set --public-url (or CONSENTRY_PUBLIC_URL, or public_url with PUT /v1/settings) to the address customers reach."
}

// TestConfig returns a valid configuration for tests and tools that build a
// service without flags.
func TestConfig(dbPath string) Config {
	c, err := ParseServeConfig([]string{"--db", dbPath}, func(string) string { return "" }, io.Discard)
	if err != nil {
		panic(err)
	}
	return c
}

// SlogLevel is the configured log level.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// splitList reads a comma-separated flag value.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ServerConfig is FiberConfig with this configuration's proxy trust: with
// trusted proxies, a request that comes from one of them is attributed to
// the client address httpguard.ForwardedClient finds in its X-Forwarded-For (rate
// limits, evidence); from anywhere else the header is ignored.
func (c Config) ServerConfig() fiber.Config {
	fc := FiberConfig()
	if len(c.TrustedProxies) > 0 {
		fc.ProxyHeader = fiber.HeaderXForwardedFor
		fc.EnableTrustedProxyCheck = true
		fc.TrustedProxies = c.TrustedProxies
		fc.EnableIPValidation = true
	}
	return fc
}
