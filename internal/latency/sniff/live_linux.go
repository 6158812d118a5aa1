package sniff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// LiveOptions configure a live capture.
type LiveOptions struct {
	// Interface to capture on; "any" or empty captures on all of them.
	Interface string
	// Ports are the broker ports, as in Options.
	Ports []uint16
	// BufferBytes is the size of the kernel ring (default 64 MiB). A ring
	// too small for bursts shows as kernel drops.
	BufferBytes int
	// Write, when set, receives every captured packet as a pcap file
	// (link type raw IP, nanosecond time stamps), for tshark or a later
	// --read.
	Write io.Writer
}

// Validate checks the options without touching the kernel.
func (o *LiveOptions) Validate() error {
	if len(o.Ports) == 0 {
		return errors.New("no broker port: give the port the broker listens on (e.g. 9092)")
	}
	if o.BufferBytes < 0 {
		return errors.New("negative capture buffer size")
	}
	return nil
}

// Capture is a live AF_PACKET (TPACKET_V3) capture. It owns the socket;
// Close releases it.
type Capture struct {
	tp    *afpacket.TPacket
	w     *pcapgo.Writer
	drops uint64
}

const (
	blockSize = 1 << 20
	snaplen   = 262144
)

// OpenLive opens the capture socket, binds it and attaches the port filter.
// Errors name the cause: a missing CAP_NET_RAW, an unknown interface.
func OpenLive(o LiveOptions) (*Capture, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	loIndex := -1
	opts := []any{
		afpacket.TPacketVersion3,
		afpacket.SocketDgram, // packets start at the IP header, on any interface
		afpacket.OptBlockSize(blockSize),
		afpacket.OptFrameSize(1 << 16),
		afpacket.OptBlockTimeout(10 * time.Millisecond),
		afpacket.OptPollTimeout(100 * time.Millisecond),
	}
	buf := o.BufferBytes
	if buf == 0 {
		buf = 64 << 20
	}
	opts = append(opts, afpacket.OptNumBlocks(max(buf/blockSize, 2)))
	if o.Interface != "" && o.Interface != "any" {
		ifc, err := net.InterfaceByName(o.Interface)
		if err != nil {
			return nil, fmt.Errorf("capture on %q: no such interface (see ip link): %w", o.Interface, err)
		}
		opts = append(opts, afpacket.OptInterface(o.Interface))
		if ifc.Flags&net.FlagLoopback != 0 {
			loIndex = 0
		}
	} else if ifs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagLoopback != 0 {
				loIndex = ifc.Index
			}
		}
	}
	tp, err := afpacket.NewTPacket(opts...)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open packet socket: %w: capturing needs root or CAP_NET_RAW "+
				"(sudo setcap cap_net_raw+ep $(command -v lockscope)), or read a capture file with --read", err)
		}
		return nil, fmt.Errorf("open packet socket on %q: %w", o.Interface, err)
	}
	prog, err := portFilter(o.Ports, loIndex, snaplen)
	if err == nil {
		err = tp.SetBPF(prog)
	}
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("attach port filter: %w", err)
	}
	// Counters start at the filter, not at the socket's first moments.
	if err := tp.InitSocketStats(); err != nil {
		tp.Close()
		return nil, fmt.Errorf("read capture counters: %w", err)
	}
	c := &Capture{tp: tp}
	if o.Write != nil {
		c.w = pcapgo.NewWriterNanos(o.Write)
		if err := c.w.WriteFileHeader(snaplen, layers.LinkTypeRaw); err != nil {
			tp.Close()
			return nil, fmt.Errorf("write capture header: %w", err)
		}
	}
	return c, nil
}

// Run hands packets to s until ctx ends. tick, if not nil, is called about
// every interval with the time, from the capturing goroutine, so a caller
// can report progress without locking.
func (c *Capture) Run(ctx context.Context, s *Sniffer, interval time.Duration, tick func(now time.Time)) error {
	next := time.Now().Add(interval)
	for ctx.Err() == nil {
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			t := ci.Timestamp.UnixNano()
			if c.w != nil {
				if werr := c.w.WritePacket(ci, data); werr != nil {
					return fmt.Errorf("write capture: %w", werr)
				}
			}
			s.Packet(layers.LinkTypeRaw, data, t)
		case errors.Is(err, afpacket.ErrTimeout):
			s.Idle(time.Now().UnixNano())
		default:
			return fmt.Errorf("read packet: %w", err)
		}
		if tick != nil && interval > 0 {
			if now := time.Now(); !now.Before(next) {
				c.updateDrops(s)
				tick(now)
				next = now.Add(interval)
			}
		}
	}
	c.updateDrops(s)
	return nil
}

func (c *Capture) updateDrops(s *Sniffer) {
	if _, v3, err := c.tp.SocketStats(); err == nil {
		s.Stats.KernelDrops.Store(uint64(v3.Drops()))
	}
}

// Close releases the socket and its ring.
func (c *Capture) Close() { c.tp.Close() }

var _ gopacket.ZeroCopyPacketDataSource = (*afpacket.TPacket)(nil)
