package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	t.Parallel()
	vcs := func(rev, tm, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.0",
			Main:      debug.Module{Path: "github.com/mercurectl/mercurectl", Version: "(devel)"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev},
				{Key: "vcs.time", Value: tm},
				{Key: "vcs.modified", Value: modified},
			},
		}
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
		str                   string
	}{
		{
			name:    "release build stamped by the linker",
			version: "v1.2.3", commit: "0123456789abcdef0123456789abcdef01234567", date: "2026-01-02T03:04:05Z",
			bi:   vcs("ffffffffffffffffffffffffffffffffffffffff", "2025-01-01T00:00:00Z", "true"),
			want: Info{Version: "1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.0", Platform: platform},
			str:  "1.2.3 (commit 0123456789ab, built 2026-01-02T03:04:05Z, go1.26.0 " + platform + ")",
		},
		{
			name: "go install of a tagged module",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.4.0"}},
			want: Info{Version: "0.4.0", GoVersion: "go1.26.1", Platform: platform},
			str:  "0.4.0 (go1.26.1 " + platform + ")",
		},
		{
			name: "development build from a dirty tree",
			bi:   vcs("abcdef0123456789abcdef0123456789abcdef01", "2026-02-03T04:05:06Z", "true"),
			want: Info{Version: "dev", Commit: "abcdef0123456789abcdef0123456789abcdef01-dirty", Date: "2026-02-03T04:05:06Z", GoVersion: "go1.26.0", Platform: platform},
			str:  "dev (commit abcdef012345-dirty, built 2026-02-03T04:05:06Z, go1.26.0 " + platform + ")",
		},
		{
			name:    "placeholders of a snapshot outside git",
			version: "0.0.1-next", commit: "none", date: "0001-01-01T00:00:00Z",
			bi:   vcs("abcdef0123456789abcdef0123456789abcdef01", "2026-02-03T04:05:06Z", "false"),
			want: Info{Version: "0.0.1-next", Commit: "abcdef0123456789abcdef0123456789abcdef01", Date: "2026-02-03T04:05:06Z", GoVersion: "go1.26.0", Platform: platform},
			str:  "0.0.1-next (commit abcdef012345, built 2026-02-03T04:05:06Z, go1.26.0 " + platform + ")",
		},
		{
			name: "no build info",
			want: Info{Version: "dev", GoVersion: runtime.Version(), Platform: platform},
			str:  "dev (" + runtime.Version() + " " + platform + ")",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := get(tt.version, tt.commit, tt.date, tt.bi)
			if got != tt.want {
				t.Errorf("get() = %+v\nwant    %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q\nwant       %q", s, tt.str)
			}
		})
	}
}

func TestGetUsesTheRunningBinary(t *testing.T) {
	t.Parallel()
	if got := Get(); got.Version == "" || got.GoVersion == "" || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Get() = %+v", got)
	}
}
