package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
)

// sweepResult is what the final sweep removed and could not remove.
type sweepResult struct {
	// sandboxLeft are objects carrying a sandbox id: its cleanup hook
	// should have removed them (a cleanup bug).
	sandboxLeft []string
	// expected are the rest: the projects' cache and layer volumes, which
	// outlive jobs by design, and what the bench made itself.
	expected []string
	// failed could not be removed after a few tries, with the Engine's error.
	failed []string
}

// sweep removes every object of this invocation still on the Engine: the
// product's (managed objects of the bench's projects) and the bench's own
// (its label), images included. An object still in use is retried.
// It runs even when ctx has ended (Ctrl-C), bounded by its own deadline.
func sweep(ctx context.Context, api *client.Client, inv *invocation) sweepResult {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	filters := []client.Filters{
		client.Filters{}.Add("label", executor.LabelManaged+"=true"),
		client.Filters{}.Add("label", benchLabel+"="+inv.tagString()),
	}
	var res sweepResult
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		res.failed = nil
		for _, f := range filters {
			for _, o := range listOwned(ctx, api, inv, f) {
				if err := o.remove(ctx, api); err != nil {
					res.failed = append(res.failed, fmt.Sprintf("%s %s (%v)", o.kind, o.name, err))
				} else if o.labels[executor.LabelSandbox] != "" {
					res.sandboxLeft = append(res.sandboxLeft, o.kind+" "+o.name)
				} else {
					res.expected = append(res.expected, o.kind+" "+o.name)
				}
			}
		}
		if len(res.failed) == 0 {
			break
		}
	}
	return res
}

// engineObject is a container, volume, network or image to remove.
type engineObject struct {
	kind, id, name string
	labels         map[string]string
}

// listOwned lists the invocation's objects among those matching f,
// containers first: volumes and networks are in use until they are gone.
// A listing that fails is skipped; the next attempt lists again.
func listOwned(ctx context.Context, api *client.Client, inv *invocation, f client.Filters) []engineObject {
	var out []engineObject
	add := func(o engineObject) {
		if inv.owns(o.labels) {
			out = append(out, o)
		}
	}
	if cs, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range cs.Items {
			add(engineObject{"container", c.ID, strings.TrimPrefix(strings.Join(c.Names, ","), "/"), c.Labels})
		}
	}
	if vs, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range vs.Items {
			add(engineObject{"volume", v.Name, v.Name, v.Labels})
		}
	}
	if ns, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range ns.Items {
			add(engineObject{"network", n.ID, n.Name, n.Labels})
		}
	}
	if is, err := api.ImageList(ctx, client.ImageListOptions{Filters: f}); err == nil {
		for _, i := range is.Items {
			add(engineObject{"image", i.ID, strings.Join(i.RepoTags, ","), i.Labels})
		}
	}
	return out
}

func (o engineObject) remove(ctx context.Context, api *client.Client) error {
	var err error
	switch o.kind {
	case "container":
		_, err = api.ContainerRemove(ctx, o.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	case "volume":
		_, err = api.VolumeRemove(ctx, o.id, client.VolumeRemoveOptions{Force: true})
	case "network":
		_, err = api.NetworkRemove(ctx, o.id, client.NetworkRemoveOptions{})
	case "image":
		_, err = api.ImageRemove(ctx, o.id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}
	return err
}
