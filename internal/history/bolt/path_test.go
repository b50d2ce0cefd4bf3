package bolt

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestStateDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		goos string
		env  map[string]string
		want string // "" for an error
	}{
		{"linux", map[string]string{"XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg"},
		{"linux", map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/state"},
		{"linux", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state"},
		{"freebsd", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state"},
		{"linux", map[string]string{}, ""},
		{"darwin", map[string]string{"HOME": "/Users/u"}, "/Users/u/Library/Application Support"},
		{"darwin", map[string]string{"HOME": "/Users/u", "XDG_STATE_HOME": "/xdg"}, "/xdg"},
		{"windows", map[string]string{"LocalAppData": `C:\Users\u\AppData\Local`, "XDG_STATE_HOME": "/xdg"}, `C:\Users\u\AppData\Local`},
		{"windows", map[string]string{}, ""},
		{"plan9", map[string]string{"home": "/usr/u"}, "/usr/u/lib"},
	}
	for _, tc := range tests {
		got, err := stateDir(tc.goos, func(k string) string { return tc.env[k] })
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s %v: got %q, want an error", tc.goos, tc.env, got)
			}
			continue
		}
		if err != nil || got != filepath.FromSlash(tc.want) && got != tc.want {
			t.Errorf("%s %v: got %q, %v; want %q", tc.goos, tc.env, got, err, tc.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("XDG_STATE_HOME is not used on " + runtime.GOOS)
	}
	state := filepath.Join(t.TempDir(), "state")
	env := map[string]string{"XDG_STATE_HOME": state, "HOME": "/nonexistent"}
	got, err := DefaultPath(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "mercurectl", "hub.db"); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}
	fi, err := os.Stat(filepath.Dir(got))
	if err != nil {
		t.Fatalf("directory not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %v, want 0700", perm)
	}
	s := openT(t, got, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultPath(func(string) string { return "" }); err == nil {
		t.Error("DefaultPath with no HOME succeeded")
	}
}
