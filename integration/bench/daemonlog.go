package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// daemonLogMarks are the moments of a dind container's start-up, read from
// its log with the Engine's timestamps.
type daemonLogMarks struct {
	CertsDone   time.Time // the entrypoint's last "openssl verify" (client or server cert OK)
	StartingUp  time.Time // dockerd: "Starting up"
	ContainerdU time.Time // dockerd: managed containerd booted
	LoadingFrom time.Time // dockerd: "Loading containers: start."
	Listening   time.Time // dockerd: "API listen on [::]:2376"
}

// readDaemonLog fetches and parses the container's log so far.
func readDaemonLog(ctx context.Context, api *client.Client, id string) (daemonLogMarks, error) {
	var marks daemonLogMarks
	logs, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return marks, fmt.Errorf("log of %s: %w", id, err)
	}
	defer logs.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, logs)
		pw.CloseWithError(err)
	}()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ts, text, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		setOnce := func(t *time.Time) {
			if t.IsZero() {
				*t = at
			}
		}
		switch {
		case strings.HasSuffix(text, "cert.pem: OK"):
			marks.CertsDone = at
		case strings.Contains(text, `msg="Starting up"`):
			setOnce(&marks.StartingUp)
		case strings.Contains(text, "containerd successfully booted"):
			setOnce(&marks.ContainerdU)
		case strings.Contains(text, "Loading containers: start"):
			setOnce(&marks.LoadingFrom)
		case strings.Contains(text, "API listen on [::]:2376"):
			setOnce(&marks.Listening)
		}
	}
	return marks, sc.Err()
}
