package widgets

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
)

// pageText is the wording of the unsubscribe and preference pages.
type pageText struct {
	UnsubTitle, UnsubLead, UnsubButton, UnsubDoneTitle, UnsubDone, AlreadyOut string
	PrefsTitle, PrefsLead, PrefsNotice, Save, Saved, Pending, Nothing         string
	ChooseTopics, UnsubAll, InvalidTitle, Invalid, RefusedTitle, Refused      string
	Footer                                                                    string
}

// pageTexts are filled with {business} and {number} (the last digits).
var pageTexts = map[string]pageText{
	"en": {
		UnsubTitle:     "Unsubscribe",
		UnsubLead:      "Stop all WhatsApp messages from {business} to the number ending in {number}?",
		UnsubButton:    "Unsubscribe from all messages",
		UnsubDoneTitle: "You are unsubscribed",
		UnsubDone:      "{business} will no longer send WhatsApp messages to the number ending in {number}. You can subscribe again at any time.",
		AlreadyOut:     "This number was already unsubscribed; nothing changed.",
		PrefsTitle:     "Your WhatsApp preferences",
		PrefsLead:      "Choose what {business} may send to the number ending in {number} on WhatsApp.",
		PrefsNotice:    "By saving, I agree to receive WhatsApp messages from {business} about the topics ticked above. I can change this at any time on this page or stop everything by replying STOP.",
		Save:           "Save preferences",
		Saved:          "Your preferences are saved.",
		Pending:        "waiting for your confirmation",
		Nothing:        "Nothing changed.",
		ChooseTopics:   "Choose topics instead",
		UnsubAll:       "Unsubscribe from everything",
		InvalidTitle:   "This link is not valid",
		Invalid:        "The link is incomplete or was changed. Open it again from the message you received, or reply STOP in the WhatsApp chat to stop all messages.",
		RefusedTitle:   "Nothing was changed yet",
		Refused:        "This page was open for a long time, or the form did not come from it, so nothing was saved. Check your choice below and press the button again.",
		Footer:         "Consent records kept by Consentry for {business}.",
	},
	"pt-BR": {
		UnsubTitle:     "Cancelar inscrição",
		UnsubLead:      "Parar todas as mensagens de {business} no WhatsApp para o número terminado em {number}?",
		UnsubButton:    "Cancelar todas as mensagens",
		UnsubDoneTitle: "Inscrição cancelada",
		UnsubDone:      "{business} não vai mais enviar mensagens no WhatsApp para o número terminado em {number}. Você pode se inscrever de novo quando quiser.",
		AlreadyOut:     "Este número já estava com a inscrição cancelada; nada mudou.",
		PrefsTitle:     "Suas preferências do WhatsApp",
		PrefsLead:      "Escolha o que {business} pode enviar para o número terminado em {number} no WhatsApp.",
		PrefsNotice:    "Ao salvar, aceito receber mensagens de {business} pelo WhatsApp sobre os assuntos marcados acima. Posso mudar isso a qualquer momento nesta página ou parar tudo respondendo SAIR.",
		Save:           "Salvar preferências",
		Saved:          "Suas preferências foram salvas.",
		Pending:        "aguardando sua confirmação",
		Nothing:        "Nada mudou.",
		ChooseTopics:   "Prefiro escolher os assuntos",
		UnsubAll:       "Cancelar tudo",
		InvalidTitle:   "Este link não é válido",
		Invalid:        "O link está incompleto ou foi alterado. Abra-o de novo a partir da mensagem recebida, ou responda SAIR na conversa do WhatsApp para parar todas as mensagens.",
		RefusedTitle:   "Nada foi alterado ainda",
		Refused:        "Esta página ficou aberta por muito tempo, ou o formulário não veio dela, então nada foi salvo. Confira sua escolha abaixo e aperte o botão de novo.",
		Footer:         "Registros de consentimento mantidos pelo Consentry para {business}.",
	},
	"es": {
		UnsubTitle:     "Darse de baja",
		UnsubLead:      "¿Dejar de recibir todos los mensajes de {business} por WhatsApp en el número que termina en {number}?",
		UnsubButton:    "Darme de baja de todos los mensajes",
		UnsubDoneTitle: "Te has dado de baja",
		UnsubDone:      "{business} ya no enviará mensajes por WhatsApp al número que termina en {number}. Puedes volver a suscribirte cuando quieras.",
		AlreadyOut:     "Este número ya estaba dado de baja; no ha cambiado nada.",
		PrefsTitle:     "Tus preferencias de WhatsApp",
		PrefsLead:      "Elige lo que {business} puede enviar al número que termina en {number} por WhatsApp.",
		PrefsNotice:    "Al guardar, acepto recibir mensajes de {business} por WhatsApp sobre los temas marcados arriba. Puedo cambiarlo en cualquier momento en esta página o darme de baja de todo respondiendo BAJA.",
		Save:           "Guardar preferencias",
		Saved:          "Tus preferencias se han guardado.",
		Pending:        "pendiente de tu confirmación",
		Nothing:        "No ha cambiado nada.",
		ChooseTopics:   "Prefiero elegir los temas",
		UnsubAll:       "Darme de baja de todo",
		InvalidTitle:   "Este enlace no es válido",
		Invalid:        "El enlace está incompleto o fue modificado. Ábrelo de nuevo desde el mensaje que recibiste, o responde BAJA en el chat de WhatsApp para dejar de recibir mensajes.",
		RefusedTitle:   "Todavía no se ha cambiado nada",
		Refused:        "Esta página estuvo abierta mucho tiempo, o el formulario no vino de ella, así que no se guardó nada. Revisa tu elección abajo y pulsa el botón otra vez.",
		Footer:         "Registros de consentimiento guardados por Consentry para {business}.",
	},
}

// Page states of unsubscribe.html.
const (
	stateConfirm = "confirm"
	stateDone    = "done"
	stateInvalid = "invalid"
)

type unsubscribeData struct {
	Lang, Nonce, State, Action, PrefsURL, FormToken string
	AlreadyOut, Refused                             bool
	T                                               pageText
}

type prefTopic struct {
	ID, Label        string
	Checked, Pending bool
}

type preferencesData struct {
	Lang, Nonce, Action, UnsubURL, FormToken string
	Saved, Changed, Refused                  bool
	Topics                                   []prefTopic
	T                                        pageText
}

// pageLocale is ?lang= when it names a supported locale (the links a
// page hands out keep it), else the reader's Accept-Language as the /l/
// pages read it, else the settings' default locale.
func pageLocale(c *fiber.Ctx, st capture.Settings) string {
	switch strings.ToLower(c.Query("lang")) {
	case "pt", "pt-br":
		return "pt-BR"
	case "en":
		return "en"
	case "es":
		return "es"
	}
	return capture.PageLocale(c.Get(fiber.HeaderAcceptLanguage), "", st.DefaultLocale)
}

// textsFor fills the page wording with the business name and the last
// digits of the number (never the whole number).
func textsFor(lang, business, e164 string) pageText {
	t := pageTexts[lang]
	last := e164
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	r := strings.NewReplacer("{business}", business, "{number}", "…"+last)
	for _, p := range []*string{&t.UnsubTitle, &t.UnsubLead, &t.UnsubButton, &t.UnsubDoneTitle, &t.UnsubDone,
		&t.AlreadyOut, &t.PrefsTitle, &t.PrefsLead, &t.PrefsNotice, &t.Save, &t.Saved, &t.Pending, &t.Nothing,
		&t.ChooseTopics, &t.UnsubAll, &t.InvalidTitle, &t.Invalid, &t.RefusedTitle, &t.Refused, &t.Footer} {
		*p = r.Replace(*p)
	}
	return t
}

func randomKey() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	// Hex: nothing html/template would escape inside the nonce attribute.
	return hex.EncodeToString(b)
}

// setPageHeaders makes the contact pages private and inert: no caching,
// no referrer (the token is in the URL), no framing, styles only by nonce,
// forms only to ourselves.
func setPageHeaders(c *fiber.Ctx, nonce string) {
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src 'self' data:; "+
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptLanguage)
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("X-Robots-Tag", "noindex, nofollow")
}

func render(c *fiber.Ctx, t *template.Template, status int, data any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return err
	}
	c.Type("html", "utf-8")
	return c.Status(status).Send(buf.Bytes())
}

// selfAction is the form's target: the same path, keeping ?lang.
func selfAction(c *fiber.Ctx, prefix, token, lang string) string {
	return prefix + token + "?lang=" + url.QueryEscape(lang)
}

// contactPage is what every request to a contact page starts from.
type contactPage struct {
	settings                 capture.Settings
	lang, nonce, token, e164 string
}

// openContactPage sets the page headers and opens the token; ok is false
// for a bad token (answer with pageInvalid).
func (h *Handler) openContactPage(c *fiber.Ctx, purpose byte) (contactPage, bool) {
	st := h.s.Settings()
	pg := contactPage{settings: st, lang: pageLocale(c, st), nonce: newNonce(), token: strings.Clone(c.Params("token"))}
	setPageHeaders(c, pg.nonce)
	e164, err := h.tokens.open(purpose, pg.token)
	pg.e164 = e164
	return pg, err == nil
}

// openContactSubmit opens a page's form submission: a valid contact token
// and a valid form token. formOK is false when the form token is missing,
// forged or too old: the caller then shows the form again, with a fresh
// token, saying nothing was changed.
func (h *Handler) openContactSubmit(c *fiber.Ctx, purpose byte) (pg contactPage, t pageText, formOK bool) {
	pg, ok := h.openContactPage(c, purpose)
	if !ok {
		return pg, t, false
	}
	t = textsFor(pg.lang, pg.settings.BusinessName, pg.e164)
	return pg, t, h.forms.valid(purpose, pg.token, string(c.Request().PostArgs().Peek(formTokenField)))
}

// pageInvalid answers a bad token with a friendly 404 page.
func (h *Handler) pageInvalid(c *fiber.Ctx, lang, nonce string) error {
	return render(c, h.unsubscribe, fiber.StatusNotFound, unsubscribeData{Lang: lang, Nonce: nonce,
		State: stateInvalid, T: textsFor(lang, h.s.Settings().BusinessName, "")})
}

// evidence is what the contact pages record about the request.
func pageEvidence(c *fiber.Ctx) ledger.Evidence {
	return ledger.Evidence{IP: c.IP(), UserAgent: cleanText(c.Get(fiber.HeaderUserAgent), maxUserAgent)}
}

// unsubscribePage shows the confirmation form; it changes nothing.
func (h *Handler) unsubscribePage(c *fiber.Ctx) error {
	pg, ok := h.openContactPage(c, purposeUnsubscribe)
	if !ok {
		return h.pageInvalid(c, pg.lang, pg.nonce)
	}
	st, lang, nonce, token, e164 := pg.settings, pg.lang, pg.nonce, pg.token, pg.e164
	prefs, err := h.tokens.seal(purposePreferences, e164)
	if err != nil {
		return err
	}
	return render(c, h.unsubscribe, fiber.StatusOK, unsubscribeData{Lang: lang, Nonce: nonce, State: stateConfirm,
		Action: selfAction(c, "/u/", token, lang), PrefsURL: selfAction(c, "/p/", prefs, lang),
		FormToken: h.forms.issue(purposeUnsubscribe, token), T: textsFor(lang, st.BusinessName, e164)})
}

// unsubscribeSubmit records a global opt-out and confirms it.
func (h *Handler) unsubscribeSubmit(c *fiber.Ctx) error {
	pg, t, formOK := h.openContactSubmit(c, purposeUnsubscribe)
	if pg.e164 == "" {
		return h.pageInvalid(c, pg.lang, pg.nonce)
	}
	lang, nonce, e164 := pg.lang, pg.nonce, pg.e164
	if !formOK {
		// The way forward: the same form again, with a token that works.
		prefs, err := h.tokens.seal(purposePreferences, e164)
		if err != nil {
			return err
		}
		return render(c, h.unsubscribe, fiber.StatusForbidden, unsubscribeData{Lang: lang, Nonce: nonce,
			State: stateConfirm, Refused: true, Action: selfAction(c, "/u/", pg.token, lang),
			PrefsURL: selfAction(c, "/p/", prefs, lang), FormToken: h.forms.issue(purposeUnsubscribe, pg.token), T: t})
	}
	cur, err := h.s.Contact(e164)
	if err != nil {
		return err
	}
	already := cur.Known && allOptedOut(cur)
	if !already {
		if _, err := h.s.Record(capture.Record{Type: ledger.TypeOptOut, Phone: e164, Source: "unsubscribe_page",
			Reason: "unsubscribe page", Evidence: pageEvidence(c)}); err != nil {
			return err
		}
	}
	return render(c, h.unsubscribe, fiber.StatusOK, unsubscribeData{Lang: lang, Nonce: nonce, State: stateDone,
		AlreadyOut: already, T: t})
}

func allOptedOut(v capture.ContactView) bool {
	for _, t := range v.Topics {
		if t.State != ledger.StateOptedOut {
			return false
		}
	}
	return true
}

// preferencesPage lists the catalog with the current state; it changes
// nothing.
func (h *Handler) preferencesPage(c *fiber.Ctx) error {
	pg, ok := h.openContactPage(c, purposePreferences)
	if !ok {
		return h.pageInvalid(c, pg.lang, pg.nonce)
	}
	data, err := h.preferencesData(pg.e164, pg.token, pg.lang, pg.nonce)
	if err != nil {
		return err
	}
	return render(c, h.preferences, fiber.StatusOK, data)
}

func (h *Handler) preferencesData(e164, token, lang, nonce string) (preferencesData, error) {
	st := h.s.Settings()
	cur, err := h.s.Contact(e164)
	if err != nil {
		return preferencesData{}, err
	}
	unsub, err := h.tokens.seal(purposeUnsubscribe, e164)
	if err != nil {
		return preferencesData{}, err
	}
	d := preferencesData{Lang: lang, Nonce: nonce, Action: "/p/" + token + "?lang=" + url.QueryEscape(lang),
		UnsubURL: "/u/" + unsub + "?lang=" + url.QueryEscape(lang), T: textsFor(lang, st.BusinessName, e164),
		FormToken: h.forms.issue(purposePreferences, token)}
	for _, tv := range cur.Topics {
		d.Topics = append(d.Topics, prefTopic{ID: tv.Topic, Label: topicLabel(st, tv.Topic, lang),
			Checked: tv.State == ledger.StateOptedIn, Pending: tv.State == ledger.StatePending})
	}
	return d, nil
}

// preferencesSubmit saves the ticked topics: an opt-out of the allowed
// topics left unticked, and an opt-in (with the page's notice) of the
// newly ticked ones.
func (h *Handler) preferencesSubmit(c *fiber.Ctx) error {
	pg, t, formOK := h.openContactSubmit(c, purposePreferences)
	if pg.e164 == "" {
		return h.pageInvalid(c, pg.lang, pg.nonce)
	}
	st, lang, nonce, e164 := pg.settings, pg.lang, pg.nonce, pg.e164
	if !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationForm) {
		return &capture.Error{Code: capture.CodeUnsupportedMediaType, Message: "send the form as application/x-www-form-urlencoded"}
	}
	var ticked []string
	for _, v := range c.Request().PostArgs().PeekMulti("topic") {
		id := string(v) // copies out of the request buffer
		if slices.Contains(st.TopicIDs(), id) && !slices.Contains(ticked, id) {
			ticked = append(ticked, id)
		}
	}
	if !formOK {
		// The way forward: the form again with the person's ticks kept
		// and a token that works; nothing recorded.
		data, err := h.preferencesData(e164, pg.token, lang, nonce)
		if err != nil {
			return err
		}
		for i := range data.Topics {
			data.Topics[i].Checked = slices.Contains(ticked, data.Topics[i].ID)
		}
		data.Refused = true
		return render(c, h.preferences, fiber.StatusForbidden, data)
	}
	cur, err := h.s.Contact(e164)
	if err != nil {
		return err
	}
	var optOut, optIn []string
	for _, tv := range cur.Topics {
		on := slices.Contains(ticked, tv.Topic)
		switch {
		case tv.State == ledger.StateOptedIn && !on:
			optOut = append(optOut, tv.Topic)
		case tv.State != ledger.StateOptedIn && on:
			optIn = append(optIn, tv.Topic)
		}
	}
	ev := pageEvidence(c)
	if len(optOut) > 0 {
		if _, err := h.s.Record(capture.Record{Type: ledger.TypeOptOut, Phone: e164, Topics: optOut,
			Source: "preference_centre", Reason: "preference centre", Evidence: ev}); err != nil {
			return err
		}
	}
	if len(optIn) > 0 {
		if _, err := h.s.Record(capture.Record{Type: ledger.TypeOptIn, Phone: e164, Topics: optIn,
			Source: "preference_centre", NoticeText: t.PrefsNotice, NoticeVersion: "preference_centre/1",
			NoticeLocale: lang, Evidence: ev}); err != nil {
			return err
		}
	}
	data, err := h.preferencesData(e164, pg.token, lang, nonce)
	if err != nil {
		return err
	}
	data.Saved, data.Changed = true, len(optOut)+len(optIn) > 0
	return render(c, h.preferences, fiber.StatusOK, data)
}

// contactLinks hands out a number's unsubscribe and preference URLs, for
// senders to put in their messages.
func (h *Handler) contactLinks(c *fiber.Ctx) error {
	st := h.s.Settings()
	// A number (E.164) or a WhatsApp BSUID: the pages work for either.
	e164, err := h.s.ContactRef(capture.PathPhone(c, "phone"))
	if err != nil {
		return err
	}
	u, err := h.tokens.seal(purposeUnsubscribe, e164)
	if err != nil {
		return err
	}
	p, err := h.tokens.seal(purposePreferences, e164)
	if err != nil {
		return err
	}
	who := "phone"
	if capture.IsUserID(e164) {
		who = "user_id"
	}
	return c.JSON(fiber.Map{who: e164, "unsubscribe_url": st.PublicURL + "/u/" + u,
		"preferences_url": st.PublicURL + "/p/" + p})
}
