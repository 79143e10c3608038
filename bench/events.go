package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// eventLog records the Engine's events while the bench runs: their
// timestamps (taken by dockerd, on the same clock as ours) say when each
// create, start and exec step of a hook happened, without touching the
// product's code.
type eventLog struct {
	mu     sync.Mutex
	events []events.Message
	stop   context.CancelFunc
	done   chan struct{}
}

func startEventLog(ctx context.Context, api *client.Client) *eventLog {
	ctx, cancel := context.WithCancel(ctx)
	l := &eventLog{stop: cancel, done: make(chan struct{})}
	filters := client.Filters{}.Add("type", "container", "network", "volume")
	res := api.Events(ctx, client.EventsListOptions{Filters: filters})
	go func() {
		defer close(l.done)
		for {
			select {
			case m := <-res.Messages:
				l.mu.Lock()
				l.events = append(l.events, m)
				l.mu.Unlock()
			case <-res.Err:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

func (l *eventLog) close() {
	l.stop()
	<-l.done
}

// settle gives dockerd a moment to deliver the events of what just ended.
func (l *eventLog) settle() { time.Sleep(150 * time.Millisecond) }

// actorName is an event's object name: containers and networks carry it
// as an attribute, volumes as their id.
func actorName(m events.Message) string {
	if n := m.Actor.Attributes["name"]; n != "" {
		return n
	}
	return m.Actor.ID
}

// first is the time of the first event in [from, to] of typ whose action
// starts with action and whose object is named name.
func (l *eventLog) first(from, to time.Time, typ events.Type, action, name string) (time.Time, bool) {
	all := l.all(from, to, typ, action, name)
	if len(all) == 0 {
		return time.Time{}, false
	}
	return all[0], true
}

// lastMatching is the time of the last event in [from, to] of typ whose
// action starts with action and whose object name satisfies match.
func (l *eventLog) lastMatching(from, to time.Time, typ events.Type, action string, match func(string) bool) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, m := range l.events {
		at := time.Unix(0, m.TimeNano)
		if m.Type == typ && !at.Before(from) && !at.After(to) && strings.HasPrefix(string(m.Action), action) && match(actorName(m)) {
			last = at
		}
	}
	return last, !last.IsZero()
}

func (l *eventLog) all(from, to time.Time, typ events.Type, action, name string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, m := range l.events {
		at := time.Unix(0, m.TimeNano)
		if m.Type != typ || at.Before(from) || at.After(to) || !strings.HasPrefix(string(m.Action), action) {
			continue
		}
		if name != "" && actorName(m) != name {
			continue
		}
		out = append(out, at)
	}
	return out
}

// daemonLogMarks are the moments of a dind container's start-up, read from
// its log with the Engine's timestamps.
type daemonLogMarks struct {
	FirstLine   time.Time // first output of the entrypoint
	CertsDone   time.Time // the entrypoint's last "openssl verify" (client or server cert OK)
	StartingUp  time.Time // dockerd: "Starting up"
	ContainerdU time.Time // dockerd: managed containerd booted
	LoadingFrom time.Time // dockerd: "Loading containers: start."
	LoadingDone time.Time // dockerd: "Loading containers: done."
	Listening   time.Time // dockerd: "API listen on [::]:2376"
}

// readDaemonLog fetches and parses the container's log so far.
func readDaemonLog(ctx context.Context, api *client.Client, id string) (daemonLogMarks, error) {
	var marks daemonLogMarks
	logs, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return marks, err
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
		setOnce(&marks.FirstLine)
		switch {
		case strings.HasSuffix(text, "cert.pem: OK"):
			marks.CertsDone = at
		case strings.Contains(text, `msg="Starting up"`):
			setOnce(&marks.StartingUp)
		case strings.Contains(text, "containerd successfully booted"):
			setOnce(&marks.ContainerdU)
		case strings.Contains(text, "Loading containers: start"):
			setOnce(&marks.LoadingFrom)
		case strings.Contains(text, "Loading containers: done"):
			setOnce(&marks.LoadingDone)
		case strings.Contains(text, "API listen on [::]:2376"):
			setOnce(&marks.Listening)
		}
	}
	return marks, sc.Err()
}
