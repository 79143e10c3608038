package stages

import (
	"slices"
	"strings"
)

// ServiceAliases are the host names a service answers to on the job
// network, by the docker executor's rules: the image path without tag,
// digest and registry port, with "/" as "__", plus a "-" variant, then the
// job's own aliases (comma or space separated), each name once.
// "registry:5000/grp/pg:15" answers as registry__grp__pg and registry-grp-pg.
func ServiceAliases(image, userAliases string) []string {
	name := imagePath(image)
	aliases := []string{strings.ReplaceAll(name, "/", "__")}
	if dash := strings.ReplaceAll(name, "/", "-"); dash != aliases[0] {
		aliases = append(aliases, dash)
	}
	for _, a := range strings.FieldsFunc(userAliases, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(aliases, a) {
			aliases = append(aliases, a)
		}
	}
	return aliases
}

// imagePath strips an image reference to its path: no digest, no tag, and
// no port on the registry host.
func imagePath(image string) string {
	name, _, _ := strings.Cut(image, "@")
	if slash := strings.LastIndex(name, "/"); strings.LastIndex(name, ":") > slash {
		name = name[:strings.LastIndex(name, ":")]
	}
	if host, rest, ok := strings.Cut(name, "/"); ok {
		if h, _, hasPort := strings.Cut(host, ":"); hasPort {
			name = h + "/" + rest
		}
	}
	return name
}
