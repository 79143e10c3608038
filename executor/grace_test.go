package executor

import (
	"context"
	"testing"
	"time"
)

func TestWithGraceOutlivesItsParentByTheGrace(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	ctx, cancel := withGrace(parent, 100*time.Millisecond)
	defer cancel()
	stop()
	select {
	case <-ctx.Done():
		t.Fatal("ended with its parent, before the grace")
	case <-time.After(30 * time.Millisecond):
	}
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("still alive long after the grace")
	}
}

func TestWithGraceLivesWhileItsParentDoes(t *testing.T) {
	ctx, cancel := withGrace(context.Background(), time.Millisecond)
	select {
	case <-ctx.Done():
		t.Fatal("ended though its parent did not")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if ctx.Err() == nil {
		t.Fatal("cancel did not end it")
	}
}
