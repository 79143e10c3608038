// Command gitlab-runner stands in for the runner binary that stage scripts
// call on the host (cache-extractor, cache-archiver, artifacts-uploader,
// artifacts-downloader), so the emulator's tests never run whatever
// gitlab-runner the host has on its PATH. It answers --version, prints
// every other call on one line and succeeds.
package main

import (
	"fmt"
	"os"
	"strings"
)

// banner starts every line it prints; tests look for it in job logs.
const banner = "gitlab-runner test stand-in:"

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-v") {
		fmt.Println("Version:      0.0.0-emulator-test-stand-in")
		return
	}
	fmt.Println(banner, strings.Join(args, " "))
}
