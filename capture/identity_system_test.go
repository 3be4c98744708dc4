package capture

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
)

// Deliveries of the 2026 platform beyond the shared samples, built from
// them in the shapes Meta's references give: the BSUID change as a system
// message (user_changed_user_id: no contacts, no phone number), a number
// change that names the new BSUID, a delivered status for a message sent
// to a BSUID, and the two forms of template_category_update (impending
// and completed).

const idJoanaNext = "BR.40962048409620484096" // a second BSUID change

// userIDChangedMessage is a user_changed_user_id system message from the
// person known by from (their old BSUID); body as Meta writes it.
func userIDChangedMessage(t *testing.T, id, fromUserID, body, newUserID string) []byte {
	return whEdit(t, "system_user_changed_number.json", func(v map[string]any) {
		v["messages"] = []any{map[string]any{
			"from_user_id": fromUserID,
			"id":           id,
			"timestamp":    "1795000500",
			"type":         "system",
			"system": map[string]any{
				"body":           body,
				"user_id":        newUserID,
				"parent_user_id": "BR.ENT.40962048102451225613",
				"type":           "user_changed_user_id",
			},
		}}
		if fromUserID == "" {
			delete(v["messages"].([]any)[0].(map[string]any), "from_user_id")
		}
	})
}

// A BSUID change arriving as a system message moves the contact to its
// new BSUID, as user_id_update does: a STOP under the new id reaches the
// number. Without from_user_id the old id is read from the body.
func TestPlatformUserChangedUserIDSystemMessage(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json"))

	change := userIDChangedMessage(t, "wamid.uid-change-1", idJoana, "User Joana changed from "+idJoana+" to "+idJoanaNew, idJoanaNew)
	before := a.head()
	a.deliver(change)
	if a.head() != before {
		t.Fatal("a BSUID change was recorded as an event")
	}
	wantCheck(t, "new user id", a.checkUser(idJoanaNew, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "old user id", a.checkUser(idJoana, "orders"), false, ledger.StateNoConsent)
	a.deliver(change) // a redelivery changes nothing
	wantCheck(t, "new user id after the redelivery", a.checkUser(idJoanaNew, "orders"), true, ledger.StateOptedIn)

	// The next change names the old id only in its body.
	a.deliver(userIDChangedMessage(t, "wamid.uid-change-2", "", "User Joana changed from "+idJoanaNew+" to "+idJoanaNext, idJoanaNext))
	wantCheck(t, "second new user id", a.checkUser(idJoanaNext, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "first new user id", a.checkUser(idJoanaNew, "orders"), false, ledger.StateNoConsent)

	stop := whEdit(t, "text_username_user.json", func(v map[string]any) {
		v["contacts"].([]any)[0].(map[string]any)["user_id"] = idJoanaNext
		m := firstMessage(v)
		m["from_user_id"], m["id"] = idJoanaNext, "wamid.after-system-change"
	})
	a.deliver(stop)
	wantCheck(t, "number after STOP under the newest id", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
	wantCheck(t, "newest id after STOP", a.checkUser(idJoanaNext, "orders"), false, ledger.StateOptedOut)

	// The history by the newest BSUID, over HTTP, is the number's.
	var byID, byPhone struct {
		Events []whEventView `json:"events"`
	}
	a.api(http.MethodGet, "/v1/contacts/"+idJoanaNext+"/events", nil, http.StatusOK, &byID)
	a.api(http.MethodGet, "/v1/contacts/"+url.PathEscape(phoneJoana)+"/events", nil, http.StatusOK, &byPhone)
	if len(byID.Events) != 2 || len(byPhone.Events) != 2 || byID.Events[1].Type != ledger.TypeOptOut {
		t.Fatalf("history: %+v by BSUID, %+v by number", byID.Events, byPhone.Events)
	}
}

// A number change that names the person's new BSUID links it to the new
// number: a later STOP carrying only that BSUID opts the new number out.
func TestPlatformUserChangedNumberWithNewBSUID(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whEdit(t, "system_user_changed_number.json", func(v map[string]any) {
		m := firstMessage(v)
		m["from_user_id"] = idJoana
		m["system"].(map[string]any)["user_id"] = idJoanaNew
	}))
	wantCheck(t, "new number", a.checkAPI(phoneJoana2, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "new BSUID", a.checkUser(idJoanaNew, "orders"), true, ledger.StateOptedIn)
	a.deliver(whEdit(t, "text_username_user.json", func(v map[string]any) {
		v["contacts"].([]any)[0].(map[string]any)["user_id"] = idJoanaNew
		m := firstMessage(v)
		m["from_user_id"], m["id"] = idJoanaNew, "wamid.stop-new-bsuid"
	}))
	wantCheck(t, "new number after STOP under the new BSUID", a.checkAPI(phoneJoana2, "orders"), false, ledger.StateOptedOut)
}

// A delivered status for a message sent to a BSUID names the person by
// BSUID and, while Meta shares it, by number (contacts and the status):
// that links them, records no event, and a later BSUID-only STOP reaches
// the number. A status with the BSUID alone records nothing.
func TestPlatformDeliveredStatusToBSUID(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	delivered := func(id string, withNumber bool) []byte {
		return whEdit(t, "status_failed_to_bsuid.json", func(v map[string]any) {
			contact := map[string]any{"profile": map[string]any{"name": "Joana", "username": "@joana.compras"}, "user_id": idJoana}
			st := v["statuses"].([]any)[0].(map[string]any)
			st["id"], st["status"] = id, "delivered"
			delete(st, "errors")
			st["pricing"] = map[string]any{"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}
			if withNumber {
				contact["wa_id"] = "5511987651111"
				st["recipient_id"] = "5511987651111"
			}
			v["contacts"] = []any{contact}
		})
	}
	before := a.head()
	a.deliver(delivered("wamid.delivered-bsuid-only", false))
	if a.head() != before {
		t.Fatal("a delivered status was recorded as an event")
	}
	wantCheck(t, "BSUID before the link", a.checkUser(idJoana, "orders"), false, ledger.StateNoConsent)
	a.deliver(delivered("wamid.delivered-both", true))
	if a.head() != before {
		t.Fatal("a delivered status was recorded as an event")
	}
	wantCheck(t, "BSUID after the delivered status", a.checkUser(idJoana, "orders"), true, ledger.StateOptedIn)
	a.deliver(whSample(t, "text_username_user.json"))
	wantCheck(t, "number after BSUID-only STOP", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
}

// template_category_update comes in two forms: an impending change
// (correct_category, new_category still the current one,
// category_update_timestamp) and a completed one (previous_category,
// new_category). The check follows the template's current category, so
// only the completed change needs marketing consent.
func TestPlatformTemplateCategoryImpendingThenCompleted(t *testing.T) {
	a := whNewApp(t)
	a.api(http.MethodPut, "/v1/templates/pedido_enviado", map[string]any{"topic": "delivery", "category": "UTILITY"}, http.StatusOK, nil)
	a.optIn(phoneJoana, "delivery")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	check := func() CheckResult {
		var res, byID CheckResult
		a.api(http.MethodGet, "/v1/check?phone="+url.QueryEscape(phoneJoana)+"&template=pedido_enviado", nil, http.StatusOK, &res)
		a.api(http.MethodGet, "/v1/check?user_id="+idJoana+"&template=pedido_enviado", nil, http.StatusOK, &byID)
		if byID.Allowed != res.Allowed || byID.State != res.State || byID.TemplateCategory != res.TemplateCategory || byID.UserID != idJoana {
			t.Fatalf("by number %+v, by BSUID %+v", res, byID)
		}
		return res
	}
	update := func(value map[string]any) []byte {
		return whEdit(t, "template_category_update.json", func(v map[string]any) {
			for k := range v {
				delete(v, k)
			}
			v["message_template_id"], v["message_template_name"], v["message_template_language"] = 987654321012345, "pedido_enviado", "pt_BR"
			for k, x := range value {
				v[k] = x
			}
		})
	}
	a.deliver(update(map[string]any{"correct_category": "MARKETING", "new_category": "UTILITY", "category_update_timestamp": 1795600000}))
	res := check()
	wantCheck(t, "after the impending notice", res, true, ledger.StateOptedIn)
	if res.TemplateCategory != CategoryUtility {
		t.Fatalf("after the impending notice: %+v", res)
	}
	a.deliver(update(map[string]any{"previous_category": "UTILITY", "new_category": "MARKETING"}))
	res = check()
	wantCheck(t, "after the completed change", res, false, ledger.StateNoConsent)
	if res.TemplateCategory != CategoryMarketing {
		t.Fatalf("after the completed change: %+v", res)
	}
}

// A message from a username user may name the sender only in contacts
// (Meta's BSUID guide shows messages with neither from nor from_user_id):
// the STOP is the only contact's, never dropped.
func TestPlatformUsernameStopNamedOnlyInContacts(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whEdit(t, "text_username_user.json", func(v map[string]any) {
		delete(firstMessage(v), "from_user_id")
	}))
	wantCheck(t, "BSUID after the STOP", a.checkUser(idJoana, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "number after the STOP", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
}
