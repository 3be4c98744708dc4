package whatsapp

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log destination the test can read while workers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The queue is bounded: replies beyond it are dropped, not blocking.
func TestReplierQueueBounded(t *testing.T) {
	release := make(chan struct{})
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		<-release
	}))
	defer srv.Close()
	log := &syncBuffer{}
	r := NewReplier(srv.URL, "1", "t", slog.New(slog.NewTextHandler(log, nil)))
	start := time.Now()
	for i := 0; i < replyQueueSize+replyWorkers+10; i++ {
		r.Enqueue("+5511987650074", "hello")
	}
	if time.Since(start) > time.Second {
		t.Fatal("enqueue blocked")
	}
	if !strings.Contains(log.String(), "queue full") {
		t.Fatal("dropped replies were not logged")
	}
	close(release)
	r.Wait()
	if n := count.Load(); n > replyQueueSize+replyWorkers || n < replyQueueSize {
		t.Fatalf("%d replies sent, want between %d and %d", n, replyQueueSize, replyQueueSize+replyWorkers)
	}
}

// Without a token, a phone number id or a Graph URL there is no replier,
// and a nil one takes replies without sending or blocking.
func TestReplierNeedsConfiguration(t *testing.T) {
	for _, c := range [][3]string{{"", "1", "t"}, {"http://graph", "", "t"}, {"http://graph", "1", ""}} {
		if r := NewReplier(c[0], c[1], c[2], nil); r != nil {
			t.Fatalf("NewReplier%q built a replier", c)
		}
	}
	var r *Replier
	r.Enqueue("+5511987650074", "hello")
	r.Wait()
}
