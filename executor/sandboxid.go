package executor

import (
	"fmt"
	"regexp"
)

// SandboxID names one sandbox. Every object of the sandbox is named from
// it and labelled with it, so any process can find the sandbox again from
// the id alone.
type SandboxID string

var sandboxIDPattern = regexp.MustCompile(`^[a-z0-9]{8,32}$`)

// Validate rejects an id that could not safely be part of object names.
func (id SandboxID) Validate() error {
	if !sandboxIDPattern.MatchString(string(id)) {
		return fmt.Errorf("sandbox id %q must be 8 to 32 lowercase letters or digits", string(id))
	}
	return nil
}

// Name is the Engine object name of a sandbox part: names are derived,
// never stored, so every hook finds the same objects.
func (id SandboxID) Name(role Role) string {
	return "dind-" + string(id) + "-" + string(role)
}

func (id SandboxID) String() string { return string(id) }
