package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in the file as a Go duration string
// ("60s", "2m30s"). A bare TOML integer is rejected rather than read as
// nanoseconds, because "ready_timeout = 60" almost always means seconds.
type Duration struct {
	time.Duration
}

// UnmarshalText implements encoding.TextUnmarshaler for the TOML decoder.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration string such as \"60s\" or \"2m30s\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler so a Config round-trips.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}
