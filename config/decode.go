package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decodeEach decodes the TOML document data into c one key at a time, so a
// value of the wrong type (a string for a number, a bad duration) is one
// problem among the others instead of the end of decoding. A key that does
// not decode keeps its value in c (its default).
//
// syntaxErr is set when data is not TOML at all; nothing else can be
// checked then. md lists the document's keys for the unknown-key check.
func decodeEach(data string, c *Config) (md toml.MetaData, problems []error, syntaxErr error) {
	var doc map[string]toml.Primitive
	md, err := toml.Decode(data, &doc)
	if err != nil {
		return md, nil, err
	}
	return md, decodeTable(&md, doc, reflect.ValueOf(c).Elem(), ""), nil
}

// decodeTable decodes the keys of one table into the fields of dst, a
// struct, in the schema's order. Keys without a field are skipped: the
// unknown-key check reports them.
func decodeTable(md *toml.MetaData, table map[string]toml.Primitive, dst reflect.Value, prefix string) []error {
	var problems []error
	for i := range dst.NumField() {
		name, _, _ := strings.Cut(dst.Type().Field(i).Tag.Get("toml"), ",")
		prim, ok := table[name]
		if name == "" || name == "-" || !ok {
			continue
		}
		key, field := prefix+name, dst.Field(i)
		if isTable(field.Type()) {
			sub, err := decodeSubTable(md, prim, key)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			problems = append(problems, decodeTable(md, sub, field, key+".")...)
			continue
		}
		if field.Kind() == reflect.Map {
			// A map takes any TOML value without complaint: check it is a table.
			if _, err := decodeSubTable(md, prim, key); err != nil {
				problems = append(problems, err)
				continue
			}
		}
		// A fresh value, kept only when it decodes whole: a half-decoded
		// list must not reach Validate and be reported a second time.
		v := reflect.New(field.Type())
		if err := md.PrimitiveDecode(prim, v.Interface()); err != nil {
			problems = append(problems, decodeProblem(key, err))
			continue
		}
		field.Set(v.Elem())
	}
	return problems
}

// decodeSubTable splits the table at key into its keys. The check comes
// first because decoding anything but a table into a map is not an error
// for the TOML library: "sandbox = 5" would pass unnoticed.
func decodeSubTable(md *toml.MetaData, prim toml.Primitive, key string) (map[string]toml.Primitive, error) {
	var raw any
	if err := md.PrimitiveDecode(prim, &raw); err != nil {
		return nil, decodeProblem(key, err)
	}
	if _, ok := raw.(map[string]any); !ok {
		return nil, fmt.Errorf("cannot decode %s: it is a TOML %s, not a table: write it as [%s]", key, tomlType(raw), key)
	}
	var sub map[string]toml.Primitive
	if err := md.PrimitiveDecode(prim, &sub); err != nil {
		return nil, decodeProblem(key, err)
	}
	return sub, nil
}

// tomlType names the TOML type of a decoded value for messages.
func tomlType(v any) string {
	switch v.(type) {
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "date or time"
	default:
		return fmt.Sprintf("value (%T)", v)
	}
}

// isTable reports whether a field of type t is a TOML table rather than a
// value: structs are, except those decoded from text (Duration).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

func decodeProblem(key string, err error) error {
	return fmt.Errorf("cannot decode %s: %w", key, err)
}
