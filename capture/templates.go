package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/whatsapp"
)

// WhatsApp message templates, mapped to topics. Meta approves a template in
// a category and may later move it (a utility template re-categorised as
// marketing needs marketing consent to be sent), so a sender checks the
// template, not just the topic, before each template message.

// Template categories as Meta names them.
const (
	CategoryUtility        = "UTILITY"
	CategoryMarketing      = "MARKETING"
	CategoryAuthentication = "AUTHENTICATION"
)

var templateCategories = []string{CategoryUtility, CategoryMarketing, CategoryAuthentication}

// templatesName is the settings entry holding the template map.
const templatesName = "templates"

// Meta's template names: lower-case letters, digits and underscores.
var templateNameRE = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)

// Template is a WhatsApp template as the ledger knows it.
type Template struct {
	Name     string `json:"name"`
	Topic    string `json:"topic"`
	Category string `json:"category"`
	// PreviousCategory is the category before Meta's last change.
	PreviousCategory string    `json:"previous_category,omitempty"`
	UpdatedAt        time.Time `json:"updated_at"`
}

type templateRequest struct {
	Topic    string `json:"topic" validate:"required"`
	Category string `json:"category" validate:"required,max=20"`
}

func (s *Service) loadTemplates() (map[string]Template, error) {
	raw, err := s.store.Setting(templatesName)
	if err != nil {
		return nil, err
	}
	return decodeTemplates(raw)
}

func decodeTemplates(raw []byte) (map[string]Template, error) {
	out := map[string]Template{}
	if raw != nil {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("stored templates are unreadable: %w", err)
		}
	}
	return out, nil
}

// errTemplatesUnchanged leaves the stored map as it is.
var errTemplatesUnchanged = errors.New("templates unchanged")

// updateTemplates changes the stored template map with fn in one store
// transaction, so admin PUTs and webhook category updates on any process
// never lose one another's change. fn returning errTemplatesUnchanged
// writes nothing.
func (s *Service) updateTemplates(fn func(m map[string]Template) error) error {
	_, err := s.store.UpdateSetting(templatesName, func(old []byte) ([]byte, error) {
		m, err := decodeTemplates(old)
		if err != nil {
			return nil, err
		}
		if err := fn(m); err != nil {
			return nil, err
		}
		return json.Marshal(m)
	})
	s.dropTemplates()
	if errors.Is(err, errTemplatesUnchanged) {
		return nil
	}
	return err
}

// PutTemplate maps a template to a topic and sets its category.
func (s *Service) PutTemplate(name string, req templateRequest) (Template, error) {
	var bad []FieldError
	if !templateNameRE.MatchString(name) {
		bad = append(bad, FieldError{Field: "name", Reason: "a WhatsApp template name: lower-case letters, digits and underscores"})
	}
	if err := s.checkTopic("topic", req.Topic); err != nil {
		bad = append(bad, FieldError{Field: "topic", Reason: err.(*Error).Fields[0].Reason})
	}
	category := strings.ToUpper(strings.TrimSpace(req.Category))
	if !slices.Contains(templateCategories, category) {
		bad = append(bad, FieldError{Field: "category", Reason: "must be one of " + strings.Join(templateCategories, ", ")})
	}
	if len(bad) > 0 {
		return Template{}, &Error{Code: CodeInvalidRequest, Message: "invalid template", Fields: bad}
	}
	var t Template
	err := s.updateTemplates(func(m map[string]Template) error {
		t = m[name]
		if t.Category != "" && t.Category != category {
			t.PreviousCategory = t.Category
		}
		t.Name, t.Topic, t.Category, t.UpdatedAt = name, req.Topic, category, time.Now().UTC().Truncate(time.Second)
		m[name] = t
		return nil
	})
	return t, err
}

// MapTemplate is PUT /v1/templates/{name} for values in hand (the
// console's settings form): the request's tag checks, then PutTemplate.
func (s *Service) MapTemplate(name, topic, category string) (Template, error) {
	req := templateRequest{Topic: topic, Category: category}
	if err := Validate(&req); err != nil {
		return Template{}, err
	}
	return s.PutTemplate(name, req)
}

// Templates lists the known templates by name.
func (s *Service) Templates() ([]Template, error) {
	m, err := s.checkTemplates()
	if err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Template) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateTemplateCategory records Meta's re-categorisation of a template. A
// template not mapped yet is kept with its category and no topic, so the
// admin sees it in the list; checks by it answer 404 until it is mapped.
func (s *Service) UpdateTemplateCategory(name, category string) error {
	category = strings.ToUpper(strings.TrimSpace(category))
	if !templateNameRE.MatchString(name) || !slices.Contains(templateCategories, category) {
		s.log.Warn("template category update ignored: unexpected name or category", "category", whatsapp.Truncate(category, 40))
		return nil
	}
	var t Template
	changed := false
	err := s.updateTemplates(func(m map[string]Template) error {
		t, changed = m[name], false
		if t.Category == category {
			return errTemplatesUnchanged
		}
		t.Name, t.PreviousCategory, t.Category = name, t.Category, category
		t.UpdatedAt = time.Now().UTC().Truncate(time.Second)
		m[name] = t
		changed = true
		return nil
	})
	if err == nil && changed {
		s.log.Info("whatsapp template re-categorised", "template", name, "from", t.PreviousCategory, "to", category)
	}
	return err
}

// CheckFor answers GET /v1/check in its general form: the contact by
// phone or user_id, the question by topic or template. By template the
// answer is for the template's topic and, once Meta has moved the template
// to MARKETING, also needs consent to a marketing topic.
func (s *Service) CheckFor(phone, userID, topic, template string) (CheckResult, error) {
	var bad []FieldError
	switch {
	case phone != "" && userID != "":
		bad = append(bad, FieldError{Field: "user_id", Reason: "give phone or user_id, not both"})
	case phone == "" && userID == "":
		bad = append(bad, FieldError{Field: "phone", Reason: "required (or user_id)"})
	}
	switch {
	case topic != "" && template != "":
		bad = append(bad, FieldError{Field: "template", Reason: "give topic or template, not both"})
	case topic == "" && template == "":
		bad = append(bad, FieldError{Field: "topic", Reason: "required (or template)"})
	}
	var ref contactRef
	var err error
	if len(bad) == 0 {
		if userID != "" {
			ref, err = userRef(userID, "user_id")
		} else {
			var e164 string
			if e164, err = s.normalize(phone); err == nil {
				ref.phone = e164
			}
		}
		if e, ok := err.(*Error); ok {
			bad = append(bad, e.Fields...)
		}
	}
	if topic != "" {
		if err := s.checkTopic("topic", topic); err != nil {
			bad = append(bad, err.(*Error).Fields...)
		}
	}
	if len(bad) > 0 {
		return CheckResult{}, &Error{Code: CodeInvalidRequest, Message: "invalid check", Fields: bad}
	}
	if template == "" {
		return s.checkRef(ref, topic)
	}
	return s.checkTemplate(ref, template)
}

func (s *Service) checkTemplate(ref contactRef, name string) (CheckResult, error) {
	m, err := s.checkTemplates()
	if err != nil {
		return CheckResult{}, err
	}
	t, ok := m[name]
	if !ok || t.Topic == "" {
		return CheckResult{}, newError(CodeNotFound, "no template with that name is mapped to a topic; map it with PUT /v1/templates/{name}")
	}
	st := s.Settings()
	topic, ok := st.topic(t.Topic)
	if !ok {
		return CheckResult{}, fieldError("template", "maps to topic "+t.Topic+", which is no longer in the catalog")
	}
	res, err := s.checkRef(ref, t.Topic)
	if err != nil {
		return CheckResult{}, err
	}
	res.Template, res.TemplateCategory = name, t.Category
	if t.Category != CategoryMarketing || topic.Category == "marketing" || !res.Allowed {
		return res, nil
	}
	// Re-categorised as marketing: the person must also have agreed to
	// marketing. The answer reports the marketing consent that is missing.
	res.Allowed, res.State, res.Since = false, ledger.StateNoConsent, nil
	for _, mt := range marketingTopics(st) {
		mres, err := s.checkRef(ref, mt)
		if err != nil {
			return CheckResult{}, err
		}
		if mres.Allowed {
			mres.Topic, mres.Template, mres.TemplateCategory = res.Topic, name, t.Category
			return mres, nil
		}
		if mres.State == ledger.StateOptedOut || res.State == ledger.StateNoConsent {
			res.State, res.Since = mres.State, mres.Since
		}
	}
	return res, nil
}

// checkBulkSize enforces the bulk check's limit over phones and BSUIDs.
func checkBulkSize(phones, users int) error {
	switch {
	case phones+users == 0:
		return &Error{Code: CodeInvalidRequest, Message: "nothing to check",
			Fields: []FieldError{{Field: "phones", Reason: "give phones or user_ids (at least one)"}}}
	case phones+users > 10000:
		return fieldError("phones", "at most 10,000 phones and user_ids together")
	}
	return nil
}

func (h *Handler) putTemplate(c *fiber.Ctx) error {
	var req templateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := h.s.PutTemplate(strings.Clone(c.Params("name")), req)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (h *Handler) listTemplates(c *fiber.Ctx) error {
	ts, err := h.s.Templates()
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"templates": ts})
}
