package capture

import (
	"os"
	"testing"

	"github.com/consentry/consentry/store/storetest"
)

// TestMain runs every test once per storage backend (store/storetest).
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
