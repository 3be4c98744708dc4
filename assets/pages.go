package assets

import "embed"

// Pages holds the server-rendered HTML templates (demo, link and consent
// pages), parsed with html/template by the packages that serve them.
//
//go:embed pages/*.html
var Pages embed.FS
