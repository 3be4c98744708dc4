package console

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
)

func (h *Handler) usersPage(c *fiber.Ctx) error { return h.renderUsers(c, fiber.StatusOK, nil, nil) }

func (h *Handler) renderUsers(c *fiber.Ctx, status int, problems []capture.FieldError, shown *userView) error {
	list, err := h.st.Users()
	if err != nil {
		return err
	}
	views := make([]userView, len(list))
	for i, u := range list {
		views[i] = viewOf(u)
	}
	return h.render(c.Status(status), "users", map[string]any{"Users": views, "Roles": roles, "Problems": problems, "Shown": shown})
}

func (h *Handler) addUser(c *fiber.Ctx) error {
	u, generated, err := h.users.add(formValue(c, "email"), formValue(c, "role"), formValue(c, "password"))
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.renderUsers(c, fiber.StatusUnprocessableEntity, p, nil)
	}
	h.audit(c, "", "users.add", u.Email, "role "+u.Role)
	v := viewOf(u)
	v.Password = generated
	return h.renderUsers(c, fiber.StatusCreated, nil, &v)
}

// changeUser applies one action of the users page: disable, enable,
// reset (password) or a role change.
func (h *Handler) changeUser(c *fiber.Ctx) error {
	email, _ := url.PathUnescape(strings.Clone(c.Params("email")))
	var err error
	var shown *userView
	action := formValue(c, "action")
	switch action {
	case "disable", "enable":
		d := action == "disable"
		if d && email == userOf(c).user.Email {
			return h.renderUsers(c, fiber.StatusUnprocessableEntity, []capture.FieldError{{Field: "email", Reason: "you cannot disable yourself"}}, nil)
		}
		_, err = h.users.update(email, nil, &d)
	case "role":
		r := formValue(c, "role")
		_, err = h.users.update(email, &r, nil)
	case "reset":
		var pw string
		if pw, err = h.users.resetPassword(email, ""); err == nil {
			shown = &userView{Email: email, Password: pw}
		}
	default:
		return h.fail(c, fiber.StatusUnprocessableEntity, "bad_request")
	}
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.renderUsers(c, fiber.StatusUnprocessableEntity, p, nil)
	}
	h.audit(c, "", "users."+action, email, formValue(c, "role"))
	return h.renderUsers(c, fiber.StatusOK, nil, shown)
}

func (h *Handler) keysPage(c *fiber.Ctx) error { return h.renderKeys(c, fiber.StatusOK, nil, nil) }

func (h *Handler) renderKeys(c *fiber.Ctx, status int, problems []capture.FieldError, created *capture.CreatedKey) error {
	keys, err := h.s.Keys()
	if err != nil {
		return err
	}
	return h.render(c.Status(status), "keys", map[string]any{"Keys": keys, "Scopes": capture.AllScopes, "Problems": problems, "Created": created})
}

func (h *Handler) createKey(c *fiber.Ctx) error {
	name := strings.TrimSpace(formValue(c, "name"))
	scopes := formList(c, "scopes")
	var problems []capture.FieldError
	if name == "" || len(name) > 80 || !capture.IsSafeText(name) {
		problems = append(problems, capture.FieldError{Field: "name", Reason: "must be 1 to 80 characters of plain text"})
	}
	if len(scopes) == 0 {
		problems = append(problems, capture.FieldError{Field: "scopes", Reason: "choose at least one scope"})
	}
	if problems != nil {
		return h.renderKeys(c, fiber.StatusUnprocessableEntity, problems, nil)
	}
	k, err := h.s.CreateKey(name, scopes)
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.renderKeys(c, fiber.StatusUnprocessableEntity, p, nil)
	}
	h.audit(c, "", "keys.create", k.ID, name+" ("+strings.Join(k.Scopes, " ")+")")
	return h.renderKeys(c, fiber.StatusCreated, nil, &k)
}

func (h *Handler) deleteKey(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if err := h.s.DeleteKey(id); err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.renderKeys(c, fiber.StatusNotFound, p, nil)
	}
	h.audit(c, "", "keys.delete", id, "")
	return c.Redirect("/console/keys", fiber.StatusSeeOther)
}

func (h *Handler) settingsPage(c *fiber.Ctx) error {
	return h.renderSettings(c, fiber.StatusOK, h.s.Settings(), nil, false)
}

// renderSettings shows the settings form with the template map beside it.
func (h *Handler) renderSettings(c *fiber.Ctx, status int, st capture.Settings, problems []capture.FieldError, saved bool) error {
	tpls, err := h.s.Templates()
	if err != nil {
		return err
	}
	return h.render(c.Status(status), "settings", map[string]any{"S": st, "Problems": problems, "Saved": saved,
		"Templates": tpls, "TopicIDs": h.s.Settings().TopicIDs(), "Categories": templateCategories})
}

var templateCategories = []string{capture.CategoryUtility, capture.CategoryMarketing, capture.CategoryAuthentication}

// saveTemplates maps templates to topics, one row each, as PUT
// /v1/templates/{name} does; unchanged rows are left alone.
func (h *Handler) saveTemplates(c *fiber.Ctx) error {
	names, topics, cats := formList(c, "tpl_name"), formList(c, "tpl_topic"), formList(c, "tpl_category")
	cur, err := h.s.Templates()
	if err != nil {
		return err
	}
	known := map[string]capture.Template{}
	for _, t := range cur {
		known[t.Name] = t
	}
	var problems []capture.FieldError
	for i, name := range names {
		name = strings.TrimSpace(name)
		topic, cat := strings.TrimSpace(at(topics, i)), strings.TrimSpace(at(cats, i))
		if name == "" || (known[name].Topic == topic && known[name].Category == cat) {
			continue
		}
		if _, err := h.s.MapTemplate(name, topic, cat); err != nil {
			p, ok := problemsOf(err)
			if !ok {
				return err
			}
			for _, f := range p {
				problems = append(problems, capture.FieldError{Field: "templates[" + name + "]." + f.Field, Reason: f.Reason})
			}
			continue
		}
		h.audit(c, "", "templates.put", name, topic+" "+cat)
	}
	if problems != nil {
		return h.renderSettings(c, fiber.StatusUnprocessableEntity, h.s.Settings(), problems, false)
	}
	return h.renderSettings(c, fiber.StatusOK, h.s.Settings(), nil, true)
}

// saveSettings changes the plain fields of the settings; the rest (topics,
// keywords) keep their values.
func (h *Handler) saveSettings(c *fiber.Ctx) error {
	next := h.s.Settings()
	next.BusinessName = strings.TrimSpace(formValue(c, "business_name"))
	next.WANumber = strings.TrimSpace(formValue(c, "wa_number"))
	next.DefaultRegion = strings.ToUpper(strings.TrimSpace(formValue(c, "default_region")))
	next.DefaultLocale = formValue(c, "default_locale")
	next.PublicURL = strings.TrimRight(strings.TrimSpace(formValue(c, "public_url")), "/")
	next.OptOutKeywords = lines(formValue(c, "optout_keywords"))
	next.OptInKeywords = lines(formValue(c, "optin_keywords"))
	var problems []capture.FieldError
	if days, err := strconv.Atoi(strings.TrimSpace(formValue(c, "receipt_ttl_days"))); err != nil || days < 1 || days > 3650 {
		problems = append(problems, capture.FieldError{Field: "receipt_ttl", Reason: "must be 1 to 3650 days"})
	} else {
		next.ReceiptTTL = capture.Duration(time.Duration(days) * 24 * time.Hour)
	}
	// The topic catalog: one row per topic; a row with a new id adds one.
	ids, cats := formList(c, "topic_id"), formList(c, "topic_category")
	pt, en, es := formList(c, "label_pt"), formList(c, "label_en"), formList(c, "label_es")
	var topics []capture.Topic
	for i, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		tp := capture.Topic{ID: id, Category: at(cats, i), Labels: map[string]string{}}
		for lang, list := range map[string][]string{"pt-BR": pt, "en": en, "es": es} {
			if v := strings.TrimSpace(at(list, i)); v != "" {
				tp.Labels[lang] = v
			}
		}
		topics = append(topics, tp)
	}
	if len(ids) > 0 {
		next.Topics = topics
	}
	// The business numbers: one row each; a row with a number adds one.
	if nums := formList(c, "num_wa_number"); len(nums) > 0 {
		ids, labels := formList(c, "num_phone_number_id"), formList(c, "num_label")
		next.Numbers = []capture.BusinessNumber{}
		for i, n := range nums {
			n, id, label := strings.TrimSpace(n), strings.TrimSpace(at(ids, i)), strings.TrimSpace(at(labels, i))
			if n == "" && id == "" && label == "" {
				continue
			}
			next.Numbers = append(next.Numbers, capture.BusinessNumber{PhoneNumberID: id, WANumber: n, Label: label})
		}
	}
	if problems != nil {
		return h.renderSettings(c, fiber.StatusUnprocessableEntity, next, problems, false)
	}
	saved, err := h.s.UpdateSettings(next)
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.renderSettings(c, fiber.StatusUnprocessableEntity, next, p, false)
	}
	h.audit(c, "", "settings.update", "", "")
	return h.renderSettings(c, fiber.StatusOK, saved, nil, true)
}

func (h *Handler) auditPage(c *fiber.Ctx) error {
	before, _ := strconv.ParseUint(queryValue(c, "before"), 10, 64)
	entries, err := h.st.AuditLog(before, 50)
	if err != nil {
		return err
	}
	data := map[string]any{"Entries": entries}
	if len(entries) == 50 {
		data["Next"] = entries[len(entries)-1].Seq
	}
	return h.render(c, "audit", data)
}

// lines splits a textarea into its non-empty lines.
func lines(v string) []string {
	var out []string
	for _, l := range strings.Split(v, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}
