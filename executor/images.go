package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parsePlatform reads "os/arch[/variant]" as .gitlab-ci.yml's
// docker: platform: writes it.
func parsePlatform(s string) (*ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("platform %q: use os/arch or os/arch/variant, e.g. linux/amd64", s)
	}
	p := &ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ensureImage makes an image available on the Engine by trying its pull
// policies in order, as the runner does: the first policy that yields the
// image wins. Pull progress goes to log. It returns the image id.
func (e *docker) ensureImage(ctx context.Context, ref ImageRef, log io.Writer) (string, error) {
	image, policies := ref.Name, ref.Pull
	if len(policies) == 0 {
		policies = []PullPolicy{PullAlways}
	}
	var tried []error
	for _, policy := range policies {
		id, err := e.imageByPolicy(ctx, ref, policy, log)
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

func (e *docker) imageByPolicy(ctx context.Context, ref ImageRef, policy PullPolicy, log io.Writer) (string, error) {
	image := ref.Name
	switch policy {
	case PullNever, PullIfNotPresent:
		id, err := e.localImage(ctx, image)
		if err == nil || policy == PullNever {
			return id, err
		}
		if !cerrdefs.IsNotFound(err) {
			return "", err
		}
		return e.pull(ctx, ref, log)
	case PullAlways:
		return e.pull(ctx, ref, log)
	default:
		return "", fmt.Errorf("unknown pull policy %q (use always, if-not-present or never)", policy)
	}
}

// imageEntrypoint is an image's own entrypoint, and the Docker version it
// says it carries (DOCKER_VERSION, as official docker images set it; ""
// when it does not say).
func (e *docker) imageEntrypoint(ctx context.Context, image string) (entrypoint []string, dockerVersion string, err error) {
	res, err := e.api.ImageInspect(ctx, image)
	if err != nil {
		return nil, "", fmt.Errorf("inspect image %s: %w", image, err)
	}
	if res.Config == nil {
		return nil, "", nil
	}
	for _, kv := range res.Config.Env {
		if v, ok := strings.CutPrefix(kv, "DOCKER_VERSION="); ok {
			dockerVersion = v
		}
	}
	return res.Config.Entrypoint, dockerVersion, nil
}

func (e *docker) localImage(ctx context.Context, image string) (string, error) {
	res, err := e.api.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("not present on the engine: %w", err)
		}
		return "", fmt.Errorf("inspect: %w", err)
	}
	var ours []string
	if res.Config != nil {
		for key := range res.Config.Labels {
			if isObjectLabel(key) {
				ours = append(ours, key)
			}
		}
	}
	if len(ours) > 0 {
		slices.Sort(ours)
		return "", fmt.Errorf("the image carries the label %s, which dind-executor puts on the objects it makes and reads back to find them (the Engine copies an image's labels onto its containers): remove that LABEL from the image", strings.Join(ours, ", "))
	}
	return res.ID, nil
}

// pull streams the Engine's progress messages as one line per layer event;
// byte-level progress updates are dropped so the job log stays readable.
func (e *docker) pull(ctx context.Context, ref ImageRef, log io.Writer) (string, error) {
	image := ref.Name
	opts := client.ImagePullOptions{}
	if ref.Auth != nil {
		encoded, err := authconfig.Encode(registry.AuthConfig{Username: ref.Auth.Username, Password: ref.Auth.Password, ServerAddress: ref.Auth.Server})
		if err != nil {
			return "", fmt.Errorf("encode credentials for %s: %w", ref.Auth.Server, err)
		}
		opts.RegistryAuth = encoded
	}
	if ref.Platform != "" {
		p, err := parsePlatform(ref.Platform)
		if err != nil {
			return "", err
		}
		opts.Platforms = []ocispec.Platform{*p}
	}
	fmt.Fprintf(log, "Pulling image %s ...\n", image)
	resp, err := e.api.ImagePull(ctx, image, opts)
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
