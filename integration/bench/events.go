package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// eventLog records the Engine's events while a section runs: their
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
	// Since replays what happened before the subscription took effect, so
	// the section's first hook is not missed.
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	res := api.Events(ctx, client.EventsListOptions{Since: since, Filters: filters})
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

// firstMatching is the time of the first event in [from, to] of typ whose
// action starts with action and whose object name satisfies match.
func (l *eventLog) firstMatching(from, to time.Time, typ events.Type, action string, match func(string) bool) (time.Time, bool) {
	times := l.matching(from, to, typ, action, match)
	if len(times) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(times, time.Time.Compare), true
}

// lastMatching is firstMatching's last event.
func (l *eventLog) lastMatching(from, to time.Time, typ events.Type, action string, match func(string) bool) (time.Time, bool) {
	times := l.matching(from, to, typ, action, match)
	if len(times) == 0 {
		return time.Time{}, false
	}
	return slices.MaxFunc(times, time.Time.Compare), true
}

// matching lists the times of the events firstMatching considers.
func (l *eventLog) matching(from, to time.Time, typ events.Type, action string, match func(string) bool) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, m := range l.events {
		at := time.Unix(0, m.TimeNano)
		if m.Type == typ && !at.Before(from) && !at.After(to) && strings.HasPrefix(string(m.Action), action) && match(actorName(m)) {
			out = append(out, at)
		}
	}
	return out
}

func (l *eventLog) all(from, to time.Time, typ events.Type, action, name string) []time.Time {
	return l.matching(from, to, typ, action, func(actor string) bool { return name == "" || actor == name })
}
