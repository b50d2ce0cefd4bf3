// Package version reports which build of mercurectl is running.
//
// Release builds stamp Version, Commit and Date with the linker:
//
//	go build -ldflags "-X github.com/mercurectl/mercurectl/internal/version.Version=1.2.3 \
//	  -X github.com/mercurectl/mercurectl/internal/version.Commit=0123abc \
//	  -X github.com/mercurectl/mercurectl/internal/version.Date=2026-01-02T03:04:05Z"
//
// Builds without those flags (go install, go run) fall back to what the Go
// toolchain records in the binary: the module version and the VCS revision.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by -ldflags -X at release time; empty otherwise.
var (
	// Version is the release version, such as "1.2.3".
	Version = ""
	// Commit is the VCS revision the release was built from.
	Commit = ""
	// Date is the build time, RFC 3339.
	Date = ""
)

// Info describes a build.
type Info struct {
	// Version is the release or module version; "dev" when unknown.
	Version string
	// Commit is the VCS revision ("" when unknown), with "-dirty" appended
	// when the tree had local modifications.
	Commit string
	// Date is the build or commit time ("" when unknown).
	Date string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Get returns the running build's information: the linker-stamped values
// where set, else the build info recorded by the Go toolchain.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(Version, Commit, Date, bi)
}

// unset reports whether a stamped value is missing: empty, or a placeholder
// that release tooling writes when it does not know the value (GoReleaser
// writes "none" and the zero time outside a git checkout).
func unset(v string) bool {
	return v == "" || v == "none" || v == "unknown" || strings.HasPrefix(v, "0001-01-01")
}

// get is Get with its inputs explicit, for tests.
func get(version, commit, date string, bi *debug.BuildInfo) Info {
	for _, v := range []*string{&version, &commit, &date} {
		if unset(*v) {
			*v = ""
		}
	}
	info := Info{
		Version:   strings.TrimPrefix(version, "v"),
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = strings.TrimPrefix(bi.Main.Version, "v")
		}
		var modified bool
		var revision, vcsTime string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if info.Commit == "" && revision != "" {
			info.Commit = revision
			if modified {
				info.Commit += "-dirty"
			}
		}
		if info.Date == "" {
			info.Date = vcsTime
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String returns a one-line description: "1.2.3 (commit 0123abc, built
// 2026-01-02T03:04:05Z, go1.26.0 linux/amd64)".
func (i Info) String() string {
	parts := make([]string, 0, 3)
	if i.Commit != "" {
		commit, dirty := strings.CutSuffix(i.Commit, "-dirty")
		if len(commit) > 12 {
			commit = commit[:12] // as git's abbreviated hashes
		}
		if dirty {
			commit += "-dirty"
		}
		parts = append(parts, "commit "+commit)
	}
	if i.Date != "" {
		parts = append(parts, "built "+i.Date)
	}
	parts = append(parts, i.GoVersion+" "+i.Platform)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}
