package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/consentry/consentry/widgets/internal/browsertest"
)

// The browser tests drive the console in headless Chromium as a person
// does: typing into the forms and clicking. Chromium chooses every header
// and cookie; nothing is set by hand.

// consoleRig is a running service and one Chromium.
type consoleRig struct {
	t       *testing.T
	e       *consoleEnv
	browser context.Context
}

func newConsoleRig(t *testing.T) *consoleRig {
	path := browsertest.RequireChromium(t)
	r := &consoleRig{t: t, e: newListeningEnv(t)}
	r.browser = browsertest.Start(t, path, 3*time.Minute)
	return r
}

// person is one browser profile (its own cookies) with one tab.
type person struct {
	r         *consoleRig
	t         *testing.T
	ctx       context.Context
	downloads string
}

func (r *consoleRig) newPerson(t *testing.T) *person {
	ctx, cancel := chromedp.NewContext(r.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &person{r: r, t: t, ctx: ctx, downloads: t.TempDir()}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	ev := true
	_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: p.downloads,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID, EventsEnabled: &ev})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

func (p *person) open(path string) { p.t.Helper(); p.do(chromedp.Navigate(p.r.e.url + path)) }

func (p *person) eval(js string, out any) {
	p.t.Helper()
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		p.t.Fatalf("eval %s: %v", js, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("eval %s: %v (%s)", js, err, raw)
		}
	}
}

func (p *person) text(js string) string {
	p.t.Helper()
	var s string
	p.eval("String("+js+")", &s)
	return s
}

func (p *person) location() string {
	p.t.Helper()
	return p.text("location.pathname + location.search")
}

// waitFor polls a JavaScript condition (from Go: the console's CSP forbids
// the eval that chromedp's Poll would use).
func (p *person) waitFor(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte]("!!("+js+")"))
		if err == nil && json.Unmarshal(raw, &ok) == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s (at %s)", what, p.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// submit clicks a button and waits for the next page to load.
func (p *person) submit(buttonSel string) {
	p.t.Helper()
	p.eval(`window.__before = performance.timeOrigin; true`, nil)
	p.do(chromedp.Click(chromedp.CSS(buttonSel)))
	p.waitFor("the page after "+buttonSel, `performance.timeOrigin !== window.__before && document.readyState === "complete"`)
}

// signIn types the email and password into the login form and sends it.
func (p *person) signIn(email, password string) {
	p.t.Helper()
	p.open("/console/login")
	p.do(chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), password))
	p.submit("#sign-in")
}

// status is the HTTP status of the page now shown, from the Navigation
// Timing entry Chromium keeps.
func (p *person) status() int {
	p.t.Helper()
	var s int
	p.eval(`performance.getEntriesByType("navigation")[0].responseStatus`, &s)
	return s
}

// download clicks a download link and returns the file's bytes.
func (p *person) download(linkSel string) []byte {
	p.t.Helper()
	before, _ := os.ReadDir(p.downloads)
	p.do(chromedp.Click(chromedp.CSS(linkSel)))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(p.downloads)
		if len(entries) > len(before) {
			for _, en := range entries {
				if strings.HasSuffix(en.Name(), ".crdownload") {
					continue
				}
				seen := false
				for _, b := range before {
					seen = seen || b.Name() == en.Name()
				}
				if !seen {
					b, err := os.ReadFile(filepath.Join(p.downloads, en.Name()))
					if err == nil && len(b) > 0 {
						return b
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("no file downloaded by %s", linkSel)
	return nil
}

// decodeQR reads a QR code from a picture with gozxing, with both of its
// binarizers (the hybrid one misses some crisp synthetic images), and then
// with zbarimg when it is installed: a code any of these real decoders
// reads is one a phone reads; one none reads fails the test.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	src := gozxing.NewLuminanceSourceFromImage(img)
	var errs []error
	for _, bin := range []gozxing.Binarizer{gozxing.NewHybridBinarizer(src), gozxing.NewGlobalHistgramBinarizer(src)} {
		bmp, err := gozxing.NewBinaryBitmap(bin)
		if err != nil {
			t.Fatal(err)
		}
		res, err := zxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
		if err == nil {
			return res.GetText()
		}
		errs = append(errs, err)
	}
	if _, err := exec.LookPath("zbarimg"); err == nil {
		file := filepath.Join(t.TempDir(), "qr.png")
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("zbarimg", "--raw", "-q", file).Output()
		if err == nil {
			t.Logf("gozxing missed a code zbarimg read (%v)", errs)
			return strings.TrimSuffix(string(out), "\n")
		}
		errs = append(errs, fmt.Errorf("zbarimg: %v", err))
	}
	t.Fatalf("no QR code found: %v", errs)
	return ""
}

func decodePNG(t *testing.T, b []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return decodeQR(t, img)
}
