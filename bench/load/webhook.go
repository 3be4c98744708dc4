package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	blockWebhookText = 4 // senders of the neutral webhook messages
	blockWebhookStop = 5 // senders of the STOP messages
	blockWrk         = 8 // numbers bench/optouts.lua opts out (+551198…)
)

// deliveryTemplate is a WhatsApp Cloud API delivery with one text message,
// in the shape Meta sends (capture/whatsapp/testdata/text_message.json).
// Verbs: sender (wa_id and from, digits only), message id, timestamp, text.
const deliveryTemplate = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{` +
	`"messaging_product":"whatsapp","metadata":{"display_phone_number":"5511987650000","phone_number_id":"106540352242922"},` +
	`"contacts":[{"profile":{"name":"Cliente"},"wa_id":"%[1]s"}],` +
	`"messages":[{"from":"%[1]s","id":"wamid.BENCH%[2]s","timestamp":"%[3]d","type":"text","text":{"body":%[4]s}}]},` +
	`"field":"messages"}]}]}`

// ledgerSize reads the number of events in the ledger from the checkpoint.
func (e *env) ledgerSize(ctx context.Context) (float64, error) {
	var out bytes.Buffer
	if _, err := e.callInto(ctx, "GET", "/v1/consent/checkpoint", e.adminKey, nil, 200, &out); err != nil {
		return 0, err
	}
	var cp struct {
		Size float64 `json:"size"`
	}
	if err := json.Unmarshal(out.Bytes(), &cp); err != nil {
		return 0, fmt.Errorf("checkpoint: %v", err)
	}
	return cp.Size, nil
}

// runWebhook posts signed deliveries, each one text message from a sender
// not seen before with a unique message id: first a neutral "Olá" (parsed,
// matched against keywords and link codes, nothing to record), then
// "STOP" (a durable opt-out before the 200). The ledger must grow by at
// least one event per counted STOP and not at all for "Olá".
func runWebhook(ctx context.Context, e *env) (Result, error) {
	if e.waSecret == "" {
		return Result{}, errors.New("-wa-secret is required (the server's --wa-app-secret)")
	}
	secret := []byte(e.waSecret)
	m := map[string]float64{"concurrency": float64(e.concurrency)}
	for _, phase := range []struct {
		prefix, text string
		block        int
		durable      bool
	}{
		{"text", "Olá", blockWebhookText, false},
		{"stop", "STOP", blockWebhookStop, true},
	} {
		text, _ := json.Marshal(phase.text)
		var next atomic.Int64
		deliver := func(ctx context.Context, _, _ int) error {
			i := int(next.Add(1))
			sender := loadPhone(phase.block, i)[1:]
			body := fmt.Appendf(nil, deliveryTemplate, sender, phase.prefix+strconv.Itoa(i), time.Now().Unix(), text)
			mac := hmac.New(sha256.New, secret)
			mac.Write(body)
			sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
			_, _, err := e.sendFast(ctx, request{method: "POST", path: "/webhooks/whatsapp", body: body, want: 200,
				header: map[string]string{"X-Hub-Signature-256": sig}})
			return err
		}
		before, err := e.ledgerSize(ctx)
		if err != nil {
			return Result{}, err
		}
		s := e.hammer(ctx, e.concurrency, deliver)
		if err := throughputMetrics(m, phase.prefix, s); err != nil {
			return Result{Metrics: m}, err
		}
		after, err := e.ledgerSize(ctx)
		if err != nil {
			return Result{}, err
		}
		m[phase.prefix+"_events_recorded"] = after - before
		if phase.durable && after-before < float64(s.ok) {
			return Result{Metrics: m}, fmt.Errorf("%d STOP deliveries answered 200 but the ledger grew by %.0f events", s.ok, after-before)
		}
		if !phase.durable && after != before {
			return Result{Metrics: m}, fmt.Errorf("neutral deliveries recorded %.0f events, want none", after-before)
		}
	}
	return Result{Metrics: m}, nil
}
