// Command dind-executor is a GitLab Runner custom executor that runs every
// job in its own mutual-TLS Docker-in-Docker sandbox. main only wires: the
// work is in packages stages, executor and config.
package main

import (
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(Run(os.Args[1:], Streams{Out: os.Stdout, Err: os.Stderr}, os.Getenv))
}
