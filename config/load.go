package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/docker/go-units"
)

// Load reads, decodes and validates the config file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return parse(data, path)
}

// Parse decodes and validates a config file's contents. Keys absent from
// data keep their Default() values; unknown keys are errors.
func Parse(data []byte) (Config, error) {
	return parse(data, "")
}

// parse is Parse with the file name used in messages ("" for none).
func parse(data []byte, source string) (Config, error) {
	where := ""
	if source != "" {
		where = " in " + source
	}

	c := Default()
	md, decodeProblems, err := decodeEach(string(data), &c)
	if err != nil {
		// A syntax error leaves no document to check further.
		return Config{}, fmt.Errorf("cannot parse TOML%s: %w", where, err)
	}

	// Unknown keys, values that do not decode and invalid values are
	// reported together so the operator sees every problem in one run.
	var problems []error
	known := schemaKeys()
	for _, key := range unknownKeys(md.Keys(), known, mapKeys()) {
		msg := fmt.Sprintf("unknown key %q%s: check the spelling against the config reference in the README", key, where)
		if k := foldMatch(key, known); k != "" {
			msg += fmt.Sprintf(" (did you mean %q? keys are case-sensitive)", k)
		}
		problems = append(problems, errors.New(msg))
	}
	problems = append(problems, decodeProblems...)
	if err := c.Validate(); err != nil {
		problems = append(problems, unwrapAll(err)...)
	}
	if len(problems) > 0 {
		return Config{}, &invalidError{source: source, problems: problems}
	}

	// Validate accepted Memory, so it parses.
	if c.Limits.Memory != "" {
		c.Limits.MemoryBytes, _ = units.RAMInBytes(c.Limits.Memory)
	}
	c.Limits.LogSizeBytes = 0
	if c.Limits.LogSize != "" {
		c.Limits.LogSizeBytes, _ = units.RAMInBytes(c.Limits.LogSize)
	}
	if c.Cache.MaxSize != "" {
		c.Cache.MaxSizeBytes, _ = units.RAMInBytes(c.Cache.MaxSize)
	}
	// Validate read each registry CA; it is read once more to be kept, and
	// checked again, so what the daemons get is what was checked.
	for _, reg := range sortedKeys(c.Daemon.RegistryCerts) {
		data, err := readRegistryCert(c.Daemon.RegistryCerts[reg])
		if err != nil {
			return Config{}, &invalidError{source: source, problems: []error{
				fmt.Errorf("daemon.registry_certs[%q] = %q %v", reg, c.Daemon.RegistryCerts[reg], err)}}
		}
		if c.Daemon.RegistryCertsPEM == nil {
			c.Daemon.RegistryCertsPEM = map[string][]byte{}
		}
		c.Daemon.RegistryCertsPEM[reg] = data
	}
	return c, nil
}

// unknownKeys returns the keys that are not in the schema, shortest unknown
// prefix only: a misspelt table is reported once, not once per key in it.
// Below a map-valued key (maps) every name is the operator's.
//
// The decoder's own Undecoded() is not enough: it matches keys to fields
// case-insensitively, so "DIND_IMAGE" would be silently accepted.
func unknownKeys(keys []toml.Key, known, maps map[string]bool) []string {
	var unknown []string
	reported := map[string]bool{}
	for _, key := range keys {
		for i := 1; i <= len(key); i++ {
			prefix := key[:i].String()
			if known[prefix] {
				if maps[prefix] {
					break
				}
				continue
			}
			if !reported[prefix] {
				reported[prefix] = true
				unknown = append(unknown, prefix)
			}
			break
		}
	}
	return unknown
}

// foldMatch returns the schema key equal to key but for case, or "".
func foldMatch(key string, known map[string]bool) string {
	for k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return ""
}

// schemaKeys lists every dotted key of Config from its toml tags, so the
// struct stays the single source of truth for the key names.
func schemaKeys() map[string]bool {
	keys := map[string]bool{}
	for _, f := range schemaFields("", reflect.TypeFor[Config]()) {
		keys[f.key] = true
	}
	return keys
}

// mapKeys lists the schema keys whose values are maps (daemon.features):
// the names inside them are the operator's, not the schema's.
func mapKeys() map[string]bool {
	keys := map[string]bool{}
	for _, f := range schemaFields("", reflect.TypeFor[Config]()) {
		if f.typ.Kind() == reflect.Map {
			keys[f.key] = true
		}
	}
	return keys
}

type schemaField struct {
	key string
	typ reflect.Type
}

// schemaFields lists every dotted key below t with its Go type.
func schemaFields(prefix string, t reflect.Type) []schemaField {
	var fields []schemaField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		fields = append(fields, schemaField{key, f.Type})
		if isTable(f.Type) {
			fields = append(fields, schemaFields(key+".", f.Type)...)
		}
	}
	return fields
}

// invalidError is every problem found in one config source. It unwraps to
// the individual problems so callers can count or inspect them.
type invalidError struct {
	source   string
	problems []error
}

func (e *invalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid config")
	if e.source != "" {
		b.WriteString(" " + e.source)
	}
	fmt.Fprintf(&b, " (%d problem", len(e.problems))
	if len(e.problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.problems {
		b.WriteString("\n  - " + p.Error())
	}
	return b.String()
}

func (e *invalidError) Unwrap() []error { return e.problems }

// unwrapAll flattens an errors.Join result into its parts.
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
