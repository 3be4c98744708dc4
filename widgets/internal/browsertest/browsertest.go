// Package browsertest finds the tools the browser tests of widgets and the
// console drive: Chromium, and axe-core for the accessibility checks.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath finds the browser ($CHROMIUM first); "" when there is none.
func ChromiumPath() string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// RequireChromium returns the browser's path, or skips the test when
// there is none.
func RequireChromium(t testing.TB) string {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		t.Skip("no Chromium found (looked for $CHROMIUM, /usr/bin/chromium, chromium, google-chrome): browser tests skipped")
	}
	return path
}

// Start runs headless Chromium at path with a fresh profile, for at most
// timeout, and returns the browser's context; it ends with the test. The
// flags keep it off the network (this machine has none to offer).
func Start(t testing.TB, path string, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true), chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.WindowSize(1024, 768),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browser
}

// AxeScript returns axe-core's axe.min.js: $CONSENTRY_AXE, else where
// .ci/run installs it. Missing locally the accessibility checks are skipped
// with a message; in CI (CI set) that is a failure.
func AxeScript(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "consentry-axe")
	var tried []string
	for _, p := range []string{os.Getenv("CONSENTRY_AXE"), filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")} {
		if p == "" {
			continue
		}
		tried = append(tried, p)
		if b, err := os.ReadFile(p); err == nil {
			return string(b)
		}
	}
	msg := fmt.Sprintf("axe-core not found (tried %v): install it with `npm install --no-save --prefix %s axe-core` "+
		"or set CONSENTRY_AXE to axe.min.js", tried, dir)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
