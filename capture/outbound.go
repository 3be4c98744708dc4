package capture

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/outbound"
	"github.com/consentry/consentry/store"
)

// Outbound webhooks (capture/outbound): the ledger queues a delivery in
// the transaction that records its event; the outbox's workers send it.

// queueOutbound queues, inside the ledger's write transaction, one
// delivery of event seq to every active subscription that wants its type.
func (s *Service) queueOutbound(tx store.WriteTx, seq uint64, subject []byte, typ string) error {
	return s.outbox.Queue(tx, seq, subject, typ)
}

// queueErasure queues an erasure notice (it carries the number until
// delivered).
func (s *Service) queueErasure(tx store.WriteTx, subject []byte, e164 string, events int) error {
	return s.outbox.QueueErasure(tx, subject, e164, events)
}

// wakeOutbound tells the workers that deliveries were queued.
func (s *Service) wakeOutbound() { s.outbox.Wake() }

// --- API ---

type subscriptionRequest struct {
	URL    string   `json:"url" validate:"required,max=2000"`
	Events []string `json:"events" validate:"required,min=1,max=4,dive,oneof=opt_in opt_out confirm erasure"`
}

// CreateSubscription validates and stores a subscription with a new
// secret, returned once.
func (s *Service) CreateSubscription(req subscriptionRequest) (outbound.SubscriptionView, error) {
	v, err := s.outbox.Create(req.URL, req.Events)
	return v, subscriptionError(err)
}

// subscriptionError answers the outbox's refusals in the envelope.
func subscriptionError(err error) error {
	var bad *outbound.URLError
	switch {
	case errors.As(err, &bad):
		return fieldError("url", bad.Reason)
	case errors.Is(err, outbound.ErrTooMany), errors.Is(err, outbound.ErrErasureGone):
		return newError(CodeConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return newError(CodeNotFound, "no such subscription")
	}
	return err
}

func (s *Service) subscription(id string) (store.Subscription, error) {
	sub, err := s.store.Subscription(id)
	return sub, subscriptionError(err)
}

func (h *Handler) createSubscription(c *fiber.Ctx) error {
	var req subscriptionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	v, err := h.s.CreateSubscription(req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (h *Handler) listSubscriptions(c *fiber.Ctx) error {
	subs, err := h.s.store.Subscriptions()
	if err != nil {
		return err
	}
	out := make([]outbound.SubscriptionView, len(subs))
	for i, sub := range subs {
		out[i] = outbound.ViewSubscription(sub)
	}
	return c.JSON(fiber.Map{"subscriptions": out})
}

func (h *Handler) getSubscription(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return c.JSON(outbound.ViewSubscription(sub))
}

func (h *Handler) deleteSubscription(c *fiber.Ctx) error {
	if err := h.s.outbox.Delete(strings.Clone(c.Params("id"))); err != nil {
		return subscriptionError(err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handler) listDeliveries(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	limit, err := queryUint(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	var before uint64
	if raw := c.Query("before"); raw != "" {
		n, ok := outbound.ParseDeliveryID(raw)
		if !ok {
			return fieldError("before", "must be a delivery id (msg_…)")
		}
		before = n
	}
	ds, err := h.s.store.Deliveries(sub.ID, before, int(limit))
	if err != nil {
		return err
	}
	out := make([]outbound.DeliveryView, len(ds))
	for i, d := range ds {
		out[i] = outbound.ViewDelivery(d)
	}
	return c.JSON(fiber.Map{"subscription": outbound.ViewSubscription(sub), "deliveries": out})
}

// retryDelivery queues a delivery again now, whatever its state, and
// re-enables its subscription if it was disabled.
func (h *Handler) retryDelivery(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	num, ok := outbound.ParseDeliveryID(c.Params("delivery"))
	if !ok {
		return newError(CodeNotFound, "no such delivery")
	}
	d, err := h.s.outbox.Retry(sub, num)
	if errors.Is(err, store.ErrNotFound) {
		return newError(CodeNotFound, "no such delivery")
	}
	if err != nil {
		return subscriptionError(err)
	}
	return c.Status(fiber.StatusAccepted).JSON(outbound.ViewDelivery(d))
}
