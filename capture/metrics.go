package capture

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/webhook"
)

// Metrics holds the Prometheus collectors of one service. Each service has
// its own registry so several can run in one process (tests).
type Metrics struct {
	registry *prometheus.Registry
	optIns   *prometheus.CounterVec
	optOuts  *prometheus.CounterVec
	confirms *prometheus.CounterVec
	scans    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// webhookSkipped counts webhook events recorded nowhere, by reason.
	webhookSkipped *prometheus.CounterVec
	// unknownNumbers counts webhook changes for a phone_number_id that
	// is not in the settings' numbers.
	unknownNumbers prometheus.Counter
}

// NewMetrics registers the collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		optIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentry_optins_total",
			Help: "Opt-ins recorded, by source."}, []string{"source"}),
		optOuts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentry_optouts_total",
			Help: "Opt-outs recorded, by source."}, []string{"source"}),
		confirms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentry_confirms_total",
			Help: "Pending opt-ins confirmed, by source."}, []string{"source"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentry_scans_total",
			Help: "Link scans counted (bots excluded), by source."}, []string{"source"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consentry_http_request_duration_seconds",
			Help: "HTTP request latency by route and status.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"method", "route", "status"}),
		webhookSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consentry_webhook_skipped_total",
			Help: "WhatsApp webhook events recorded nowhere, by reason."}, []string{"reason"}),
	}
	for _, reason := range webhook.SkipReasons {
		m.webhookSkipped.WithLabelValues(reason) // listed at 0 from the start
	}
	m.unknownNumbers = prometheus.NewCounter(prometheus.CounterOpts{Name: "consentry_webhook_unknown_number_total",
		Help: "WhatsApp webhook changes ignored because their phone_number_id is not configured."})
	m.registry.MustRegister(m.optIns, m.optOuts, m.confirms, m.scans, m.latency, m.webhookSkipped, m.unknownNumbers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) countEvent(typ, source string) {
	switch typ {
	case ledger.TypeOptIn:
		m.optIns.WithLabelValues(source).Inc()
	case ledger.TypeOptOut:
		m.optOuts.WithLabelValues(source).Inc()
	case ledger.TypeConfirm:
		m.confirms.WithLabelValues(source).Inc()
	}
}

// countWebhookSkip counts a webhook event recorded nowhere, by reason
// (webhook.Skip…).
func (m *Metrics) countWebhookSkip(reason string) { m.webhookSkipped.WithLabelValues(reason).Inc() }

func (m *Metrics) countUnknownNumber() { m.unknownNumbers.Inc() }

// CountScan counts one link scan.
func (m *Metrics) CountScan(source string) { m.scans.WithLabelValues(source).Inc() }

// Middleware observes the latency of every request by route template (not
// the raw path, which may hold a phone number).
func (m *Metrics) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			if e, ok := err.(*Error); ok {
				status = e.Code.Status()
			} else if fe, ok := err.(*fiber.Error); ok {
				status = fe.Code
			}
		}
		m.latency.WithLabelValues(stableMethod(c.Method()), c.Route().Path, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		return err
	}
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

// stableMethod returns a constant for the request method: Fiber hands the
// method out as a view of a buffer reused by later requests, and a label
// value must outlive the request.
func stableMethod(m string) string {
	for _, known := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
		fiber.MethodDelete, fiber.MethodHead, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "OTHER"
}
