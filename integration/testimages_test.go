package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// testImageLabel marks the images a test makes on the shared Engine (builds
// and commits). Each image a test makes gets a value of its own, so that
// test removes exactly what it made: never the setup's images
// (integration/images/build.sh), never another test's.
//
// The classic builder leaves an untagged image per step. Those of the final
// stage are parents of the labelled result and go with it; those of an
// earlier stage inherit the label of the test image they start from (the
// Dockerfile test's Go image), so they are found by it.
const testImageLabel = "io.dind-executor.test.image"

// ownImages returns a fresh value for testImageLabel and, when the test
// ends, removes every image carrying it and fails the test if one is left.
// Builds that use it must set NoCache: a cached step would make the
// build's intermediate images shared with another build.
func ownImages(t *testing.T) string {
	t.Helper()
	value := strconv.FormatInt(newJobID(), 36)
	api := dockerAPI(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := removeLabelledImages(ctx, api, value); err != nil {
			t.Errorf("remove the test's images (%s=%s): %v", testImageLabel, value, err)
		}
	})
	return value
}

// removeLabelledImages removes the images labelled testImageLabel=value,
// children before parents (the Engine refuses to remove an image another
// one is built on), each with its untagged parents (PruneChildren: the
// build steps before the label was applied).
func removeLabelledImages(ctx context.Context, api *client.Client, value string) error {
	filter := client.Filters{}.Add("label", testImageLabel+"="+value)
	for {
		list, err := api.ImageList(ctx, client.ImageListOptions{All: true, Filters: filter})
		if err != nil {
			return fmt.Errorf("list images: %w", err)
		}
		if len(list.Items) == 0 {
			return nil
		}
		isParent := map[string]bool{}
		for _, img := range list.Items {
			isParent[img.ParentID] = true
		}
		for _, img := range list.Items {
			if isParent[img.ID] {
				continue // removed in a later round, after its children
			}
			// Force: it may carry more names (tagImage) or registry digests.
			if _, err := api.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				return fmt.Errorf("remove image %s %v: %w", img.ID, img.RepoTags, err)
			}
		}
	}
}
