package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// EnsureImage makes image available on the Engine by trying the pull
// policies in order, as the runner does: the first policy that yields the
// image wins. Pull progress goes to log. It returns the image id.
func (e *Engine) EnsureImage(ctx context.Context, image string, policies []PullPolicy, log io.Writer) (string, error) {
	if len(policies) == 0 {
		policies = []PullPolicy{PullAlways}
	}
	var tried []error
	for _, policy := range policies {
		id, err := e.imageByPolicy(ctx, image, policy, log)
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("image %s: %w", image, ctx.Err())
		}
		tried = append(tried, fmt.Errorf("pull policy %s: %w", policy, err))
	}
	return "", fmt.Errorf("image %s is not available: %w", image, errors.Join(tried...))
}

func (e *Engine) imageByPolicy(ctx context.Context, image string, policy PullPolicy, log io.Writer) (string, error) {
	switch policy {
	case PullNever, PullIfNotPresent:
		id, err := e.localImage(ctx, image)
		if err == nil || policy == PullNever {
			return id, err
		}
		if !cerrdefs.IsNotFound(err) {
			return "", err
		}
		return e.pull(ctx, image, log)
	case PullAlways:
		return e.pull(ctx, image, log)
	default:
		return "", fmt.Errorf("unknown pull policy %q (use always, if-not-present or never)", policy)
	}
}

func (e *Engine) localImage(ctx context.Context, image string) (string, error) {
	res, err := e.api.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("not present on the engine: %w", err)
		}
		return "", fmt.Errorf("inspect: %w", err)
	}
	return res.ID, nil
}

// pull streams the Engine's progress messages as one line per layer event;
// byte-level progress updates are dropped so the job log stays readable.
func (e *Engine) pull(ctx context.Context, image string, log io.Writer) (string, error) {
	fmt.Fprintf(log, "Pulling image %s ...\n", image)
	resp, err := e.api.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return "", fmt.Errorf("pull: %w", err)
	}
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", fmt.Errorf("pull: %w", err)
		}
		if msg.Error != nil {
			return "", fmt.Errorf("pull: %s", msg.Error.Message)
		}
		if msg.Progress != nil && msg.Progress.Total > 0 {
			continue
		}
		line := strings.TrimSpace(strings.Join([]string{msg.ID, msg.Status}, " "))
		if line != "" {
			fmt.Fprintf(log, "  %s\n", line)
		}
	}
	return e.localImage(ctx, image)
}
