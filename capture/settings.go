package capture

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/consentry/consentry/capture/phone"
)

// Topic is one entry of the topic catalog.
type Topic struct {
	ID       string            `json:"id" validate:"required,topicid"`
	Category string            `json:"category" validate:"required,oneof=utility marketing"`
	Labels   map[string]string `json:"labels" validate:"omitempty,dive,keys,oneof=pt-BR en es,endkeys,max=80,safetext"`
}

// Settings is the run-time configuration kept in the store and changed with
// PUT /v1/settings. Zero values mean "use the default".
type Settings struct {
	BusinessName  string   `json:"business_name" validate:"required,min=2,max=80,safetext"`
	WANumber      string   `json:"wa_number" validate:"omitempty,max=40"`
	DefaultRegion string   `json:"default_region" validate:"required,len=2"`
	DefaultLocale string   `json:"default_locale" validate:"required,oneof=pt-BR en es"`
	PublicURL     string   `json:"public_url" validate:"required,max=200"`
	Topics        []Topic  `json:"topics" validate:"required,min=1,max=50,dive"`
	ReceiptTTL    Duration `json:"receipt_ttl"`

	// WhatsApp keyword handling (webhook).
	OptOutKeywords   []string `json:"optout_keywords" validate:"omitempty,max=100,dive,min=1,max=40,safetext"`
	OptInKeywords    []string `json:"optin_keywords" validate:"omitempty,max=100,dive,min=1,max=40,safetext"`
	OptOutPayloads   []string `json:"optout_payloads" validate:"omitempty,max=100,dive,min=1,max=100,safetext"`
	KeepProfileNames bool     `json:"keep_profile_names"`

	// Numbers are the business's WhatsApp numbers (numbers.go); wa_number
	// is the default one.
	Numbers []BusinessNumber `json:"numbers" validate:"omitempty,max=50,dive"`
	// publicURLSet: PublicURL was given explicitly (flag, variable or
	// settings API) and is stored; otherwise it is http://<addr> of the
	// current start and is not stored, so a start on another address
	// shows that address.
	publicURLSet bool
}

// Duration is a time.Duration written as a Go duration string ("2160h").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fieldError("receipt_ttl", "must be a duration like \"2160h\"")
	}
	*d = Duration(v)
	return nil
}

// Sources of links and opt-ins.
var linkSources = []string{"receipt", "packaging", "signage", "print", "pos_display", "event",
	"invoice", "sms", "email", "web", "app", "staff"}

// optInSources adds the channels the service itself records from ("ad":
// a click-to-WhatsApp ad).
var optInSources = append(append([]string{}, linkSources...), "api", "widget", "whatsapp", "import", "ad",
	"unsubscribe_page", "preference_centre")

func isOneOf(v string, list []string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// DefaultTopics is the catalog a new instance starts with.
func DefaultTopics() []Topic {
	t := func(id, cat, pt, en, es string) Topic {
		return Topic{ID: id, Category: cat, Labels: map[string]string{"pt-BR": pt, "en": en, "es": es}}
	}
	return []Topic{
		t("orders", "utility", "Pedidos", "Orders", "Pedidos"),
		t("delivery", "utility", "Entregas", "Delivery", "Entregas"),
		t("appointments", "utility", "Agendamentos", "Appointments", "Citas"),
		t("payments", "utility", "Pagamentos", "Payments", "Pagos"),
		t("account", "utility", "Conta", "Account", "Cuenta"),
		t("feedback", "utility", "Avaliações", "Feedback", "Opiniones"),
		t("marketing", "marketing", "Promoções", "Promotions", "Promociones"),
	}
}

// DefaultSettings returns the settings of a new instance.
func DefaultSettings(publicURL string) Settings {
	return Settings{
		BusinessName:  "Consentry Demo",
		DefaultRegion: "BR",
		DefaultLocale: "pt-BR",
		PublicURL:     publicURL,
		Topics:        DefaultTopics(),
		ReceiptTTL:    Duration(90 * 24 * time.Hour),
	}
}

// withDefaults fills what older or partial settings leave empty.
func (s Settings) withDefaults() Settings {
	if s.DefaultRegion == "" {
		s.DefaultRegion = "BR"
	}
	if s.DefaultLocale == "" {
		s.DefaultLocale = "pt-BR"
	}
	if len(s.Topics) == 0 {
		s.Topics = DefaultTopics()
	}
	if s.ReceiptTTL == 0 {
		s.ReceiptTTL = Duration(90 * 24 * time.Hour)
	}
	if s.Numbers == nil {
		s.Numbers = []BusinessNumber{} // shown as [], not null
	}
	return s
}

// check validates what struct tags cannot: the region, the number, the URL
// and unique topic ids. It normalises wa_number to E.164.
func (s *Settings) check() *Error {
	s.DefaultRegion = strings.ToUpper(s.DefaultRegion)
	if !isKnownRegion(s.DefaultRegion) {
		return fieldError("default_region", "not a known ISO 3166 region code")
	}
	if s.WANumber != "" {
		e164, err := phone.Normalize(s.WANumber, s.DefaultRegion)
		if err != nil {
			return fieldError("wa_number", err.Error())
		}
		s.WANumber = e164
	}
	if e := s.checkNumbers(); e != nil {
		return e
	}
	if err := checkPublicURL(s.PublicURL); err != nil {
		return fieldError("public_url", err.Error())
	}
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	seen := map[string]bool{}
	for i, t := range s.Topics {
		if seen[t.ID] {
			return fieldError(fmt.Sprintf("topics[%d].id", i), "duplicate topic id")
		}
		seen[t.ID] = true
	}
	return nil
}

func isKnownRegion(r string) bool {
	return phonenumbers.GetCountryCodeForRegion(r) != 0
}

func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be an absolute http(s) URL without query, like https://consent.example.com")
	}
	return nil
}

// topic returns the catalog entry with that id.
func (s Settings) topic(id string) (Topic, bool) {
	for _, t := range s.Topics {
		if t.ID == id {
			return t, true
		}
	}
	return Topic{}, false
}

// TopicIDs lists the catalog's ids in order.
func (s Settings) TopicIDs() []string {
	ids := make([]string, len(s.Topics))
	for i, t := range s.Topics {
		ids[i] = t.ID
	}
	return ids
}
