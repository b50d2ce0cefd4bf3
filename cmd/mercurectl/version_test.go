package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mercurectl/mercurectl/internal/version"
)

func TestNewVersionCmd(t *testing.T) {
	t.Parallel()
	f, _ := newTestFactory(nil)
	var got *versionOptions
	if err := execCmd(t, f, newVersionCmd(f, func(o *versionOptions) error { got = o; return nil }), "--json"); err != nil {
		t.Fatal(err)
	}
	if !got.JSON || got.Info != version.Get() {
		t.Errorf("options = %+v", got)
	}
	err := execCmd(t, f, newVersionCmd(f, func(*versionOptions) error { t.Error("ran"); return nil }), "extra")
	if exitCode(err) != exitUsage {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}

func TestRunVersion(t *testing.T) {
	t.Parallel()
	info := version.Info{Version: "1.2.3", Commit: "0123456789abcdef", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.0", Platform: "linux/amd64"}
	f, ts := newTestFactory(nil)
	if err := runVersion(&versionOptions{IO: f.IO, Info: info}); err != nil {
		t.Fatal(err)
	}
	if want := "mercurectl version 1.2.3 (commit 0123456789ab, built 2026-01-02T03:04:05Z, go1.26.0 linux/amd64)\n"; ts.Out.String() != want {
		t.Errorf("stdout = %q, want %q", ts.Out.String(), want)
	}

	f, ts = newTestFactory(nil)
	if err := runVersion(&versionOptions{IO: f.IO, Info: info, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(ts.Out.String()), &m); err != nil || m["version"] != "1.2.3" || m["commit"] != "0123456789abcdef" ||
		m["go"] != "go1.26.0" || m["platform"] != "linux/amd64" || !strings.HasSuffix(ts.Out.String(), "}\n") {
		t.Errorf("--json wrote %q (%v)", ts.Out.String(), err)
	}
}
