// Package browsertest finds the tools the browser tests of widgets and the
// console drive: Chromium, and axe-core for the accessibility checks.
package browsertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
