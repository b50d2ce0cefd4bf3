package conformance

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/token"
)

func discoveryCases() []*caseDef {
	return []*caseDef{
		{
			group: "discovery", name: "hub-url-well-known",
			spec07: d07Discovery,
			run: func(t *T) error {
				if p := t.hubURL().Path; p != client.HubPath {
					return fmt.Errorf("the hub URL's path is %q, want %q (draft-07 fixes it)", p, client.HubPath)
				}
				return nil
			},
		},
		{
			group: "discovery", name: "metadata-served",
			spec08: d08Discovery,
			run:    checkMetadataServed,
		},
		{
			group: "discovery", name: "metadata-fields",
			spec08: d08Discovery,
			run:    checkMetadataFields,
		},
		{
			group: "discovery", name: "resource-links-hub",
			spec07: d07Discovery, spec08: "draft-08 §Discovery, RFC 8288",
			needs: needResource,
			run:   checkResourceLink,
		},
	}
}

// metadata fetches the hub's RFC 9728 document.
func (t *T) metadata() (*reply, map[string]json.RawMessage, error) {
	req, err := t.request(http.MethodGet, t.r.c.MetadataURL(), nil, "")
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	rp, err := t.do(req)
	if err != nil {
		return nil, nil, err
	}
	if rp.status != http.StatusOK {
		return rp, nil, fmt.Errorf("GET %s answered %s, want 200 with the hub's protected-resource metadata", t.r.c.MetadataURL(), rp)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rp.body), &doc); err != nil {
		return rp, nil, fmt.Errorf("the metadata at %s is not a JSON object: %w", t.r.c.MetadataURL(), err)
	}
	return rp, doc, nil
}

func checkMetadataServed(t *T) error {
	rp, doc, err := t.metadata()
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(rp.header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("the metadata's content type is %q, want application/json (RFC 9728 §3.2)", rp.header.Get("Content-Type"))
	}
	var resource string
	if json.Unmarshal(doc["resource"], &resource) != nil || resource == "" {
		return fmt.Errorf("the metadata has no string %q member, which RFC 9728 requires", "resource")
	}
	u, err := url.Parse(resource)
	if err != nil || !u.IsAbs() || u.Fragment != "" {
		return fmt.Errorf("the metadata's resource %q is not an absolute URL without a fragment (RFC 9728 §2)", resource)
	}
	return nil
}

func checkMetadataFields(t *T) error {
	_, doc, err := t.metadata()
	if err != nil {
		return err
	}
	var problems []string
	strList := func(name string) ([]string, bool) {
		raw, ok := doc[name]
		if !ok {
			return nil, false
		}
		var v []string
		if json.Unmarshal(raw, &v) != nil {
			problems = append(problems, fmt.Sprintf("%s is not an array of strings", name))
			return nil, false
		}
		return v, true
	}
	if v, ok := strList("authorization_details_types_supported"); ok && !slices.Contains(v, token.DetailType) {
		problems = append(problems, fmt.Sprintf("authorization_details_types_supported %q lacks %q", v, token.DetailType))
	}
	if v, ok := strList("bearer_methods_supported"); ok {
		for _, m := range v {
			if m != "header" && m != "body" && m != "query" {
				problems = append(problems, fmt.Sprintf("bearer_methods_supported has %q (RFC 9728 allows header, body, query)", m))
			}
		}
	}
	if v, ok := strList("authorization_servers"); ok {
		for _, s := range v {
			if u, err := url.Parse(s); err != nil || !u.IsAbs() {
				problems = append(problems, fmt.Sprintf("authorization_servers has %q, not an absolute URL", s))
			}
		}
	}
	if v, ok := strList("mercure_matcher_types_supported"); ok && len(v) == 0 {
		problems = append(problems, "mercure_matcher_types_supported is empty")
	}
	if raw, ok := doc["mercure_cookie"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			problems = append(problems, "mercure_cookie is not a non-empty string")
		}
	}
	if raw, ok := doc["mercure_subscriptions"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			problems = append(problems, "mercure_subscriptions is not a boolean")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("metadata: %s", strings.Join(problems, "; "))
	}
	return nil
}

// checkResourceLink checks that the application's resource advertises the
// hub with a Link rel="mercure" whose target is this hub.
func checkResourceLink(t *T) error {
	req, err := t.request(http.MethodGet, t.r.o.Resource, nil, "")
	if err != nil {
		return err
	}
	rp, err := t.do(req)
	if err != nil {
		return err
	}
	if rp.status < 200 || rp.status > 299 {
		return fmt.Errorf("GET %s answered %s", t.r.o.Resource, rp)
	}
	base, _ := url.Parse(t.r.o.Resource)
	links := parseLinks(rp.header.Values("Link"))
	var targets []string
	for _, l := range links {
		if !l.hasRel("mercure") {
			continue
		}
		u, err := base.Parse(l.target)
		if err != nil {
			continue
		}
		targets = append(targets, u.String())
		if sameURL(u, t.hubURL()) {
			return nil
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("GET %s has no Link header with rel=\"mercure\"", t.r.o.Resource)
	}
	return fmt.Errorf("the rel=\"mercure\" links of %s point at %s, not at the hub %s", t.r.o.Resource, strings.Join(targets, ", "), t.r.c.HubURL())
}

func sameURL(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) && a.EscapedPath() == b.EscapedPath()
}

// link is one RFC 8288 link.
type link struct {
	target string
	params map[string]string
}

func (l link) hasRel(rel string) bool {
	for r := range strings.FieldsSeq(l.params["rel"]) {
		if strings.EqualFold(r, rel) {
			return true
		}
	}
	return false
}

// parseLinks parses Link header values (RFC 8288 §3), tolerantly.
func parseLinks(values []string) []link {
	var out []link
	for _, v := range values {
		for _, part := range splitQuoted(v, ',') {
			fields := splitQuoted(part, ';')
			t := strings.TrimSpace(fields[0])
			if len(t) < 2 || t[0] != '<' || t[len(t)-1] != '>' {
				continue
			}
			l := link{target: t[1 : len(t)-1], params: map[string]string{}}
			for _, p := range fields[1:] {
				name, value, _ := strings.Cut(p, "=")
				value = strings.TrimSpace(value)
				if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
					value = strings.ReplaceAll(value[1:len(value)-1], `\"`, `"`)
				}
				l.params[strings.ToLower(strings.TrimSpace(name))] = value
			}
			out = append(out, l)
		}
	}
	return out
}

// splitQuoted splits s on sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
