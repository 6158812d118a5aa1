//go:build !linux

package sniff

import (
	"context"
	"errors"
	"io"
	"time"
)

// LiveOptions configure a live capture (Linux only).
type LiveOptions struct {
	Interface   string
	Ports       []uint16
	BufferBytes int
	Write       io.Writer
}

// Validate checks the options.
func (o *LiveOptions) Validate() error { return errLiveLinux }

var errLiveLinux = errors.New("live capture needs Linux (AF_PACKET); read a capture file with --read")

// Capture is a live capture; on this system it cannot be opened.
type Capture struct{}

// OpenLive fails: live capture uses Linux's AF_PACKET.
func OpenLive(LiveOptions) (*Capture, error) { return nil, errLiveLinux }

// Run is never reached.
func (c *Capture) Run(context.Context, *Sniffer, time.Duration, func(time.Time)) error {
	return errLiveLinux
}

// Close does nothing.
func (c *Capture) Close() {}
