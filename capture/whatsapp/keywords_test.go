package whatsapp

import "testing"

func TestKeywordClassifyText(t *testing.T) {
	rules := NewKeywordRules(nil, nil, nil)
	cases := []struct {
		text string
		want textIntent
	}{
		{"STOP", intentOptOut},
		{"stop!", intentOptOut},
		{" Parar ", intentOptOut},
		{"SAIR.", intentOptOut},
		{"cancelar", intentOptOut},
		{"NÃO QUERO", intentOptOut},
		{"nao quero!!", intentOptOut},
		{"Baja", intentOptOut},
		{"darse de baja", intentOptOut},
		{"Opt-out", intentOptOut},
		{"STOP ALL", intentOptOut},
		{"No más mensajes.", intentOptOut},
		{"Darme de baja", intentOptOut},
		{"Descadastrar", intentOptOut},
		{"Descadastre", intentOptOut},
		{"Descadastrar-me", intentOptOut},
		{"Me descadastre", intentOptOut},
		{"me descadastre por favor", intentReview},
		{"Cancelar inscrição", intentOptOut},
		{"CANCELAR INSCRICAO", intentOptOut},
		{"No más mensajes", intentOptOut},
		{"no mas mensajes!", intentOptOut},
		{"Unsubscribe", intentOptOut},
		{"unsubscribe me", intentOptOut},
		{"Não quero mais receber", intentOptOut},
		{"Quiero darme de baja", intentOptOut},
		{"Sácame de la lista", intentOptOut},
		{"No quiero recibir más", intentOptOut},
		{"Please stop", intentOptOut},
		{"Don't message me", intentOptOut},
		{"START", intentOptIn},
		{"voltar", intentOptIn},
		{"Alta", intentOptIn},
		{"reanudar", intentOptIn},
		{"yes", intentNone},
		{"sim", intentNone},
		{"não", intentNone},
		{"", intentNone},
		{"!!!", intentNone},
		{"Please stop sending me the catalog", intentReview},
		{"quero parar de receber", intentReview},
		{"Does it come in another color?", intentNone},
		{"stopwatch", intentNone},
		{"Quero receber novidades da Consentry Demo", intentNone},
	}
	for _, c := range cases {
		if got := rules.classifyText(c.text); got != c.want {
			t.Errorf("classifyText(%q) = %d, want %d", c.text, got, c.want)
		}
	}
}

func TestKeywordClassifyPayload(t *testing.T) {
	rules := NewKeywordRules(nil, nil, nil)
	cases := []struct {
		payload string
		want    payloadIntent
	}{
		{"STOP", payloadOptOut},
		{"optout", payloadOptOut},
		{"opt_out", payloadOptOut},
		{"UNSUBSCRIBE", payloadOptOut},
		{"STOP_PROMOTIONS", payloadOptOutMarket},
		{"stop-marketing", payloadOptOutMarket},
		{"BUY_NOW", payloadNone},
		{"", payloadNone},
		{"STOP_PROMOTIONS_PLEASE", payloadNone},
	}
	for _, c := range cases {
		if got := rules.classifyPayload(c.payload); got != c.want {
			t.Errorf("classifyPayload(%q) = %d, want %d", c.payload, got, c.want)
		}
	}
}

// Lists set in the settings replace the defaults entirely.
func TestKeywordSettingsReplaceDefaults(t *testing.T) {
	rules := NewKeywordRules([]string{"Sair agora"}, []string{"QUERO DE VOLTA"}, []string{"NAO_QUERO_PROMO", "ENCERRAR"})
	textCases := []struct {
		text string
		want textIntent
	}{
		{"SAIR AGORA!", intentOptOut},
		{"STOP", intentNone},
		{"quero de volta", intentOptIn},
		{"START", intentNone},
		{"vou sair agora mesmo", intentReview},
	}
	for _, c := range textCases {
		if got := rules.classifyText(c.text); got != c.want {
			t.Errorf("classifyText(%q) = %d, want %d", c.text, got, c.want)
		}
	}
	payloadCases := []struct {
		payload string
		want    payloadIntent
	}{
		{"nao_quero_promo", payloadOptOutMarket},
		{"ENCERRAR", payloadOptOut},
		{"STOP", payloadNone},
	}
	for _, c := range payloadCases {
		if got := rules.classifyPayload(c.payload); got != c.want {
			t.Errorf("classifyPayload(%q) = %d, want %d", c.payload, got, c.want)
		}
	}
}

// Every default keyword must survive folding and match itself; a keyword
// that folded to nothing, or into both lists, would be a silent bug.
func TestKeywordDefaultsAreDistinct(t *testing.T) {
	for _, w := range defaultOptOutKeywords {
		f := FoldText(w)
		if f == "" || !defaultOptOutSet.matches(f) {
			t.Errorf("opt-out keyword %q folds to %q and does not match", w, f)
		}
		if defaultOptInSet.matches(f) {
			t.Errorf("keyword %q is in both lists", w)
		}
	}
	for _, w := range defaultOptInKeywords {
		if f := FoldText(w); f == "" || !defaultOptInSet.matches(f) {
			t.Errorf("opt-in keyword %q folds to %q and does not match", w, f)
		}
	}
}
