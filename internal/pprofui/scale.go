package pprofui

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/pprof/profile"
)

// perSecondBase writes a copy of the base profile scaled to the profile's
// duration into dir, so that pprof's diff compares time per second: a
// bundle's slow profile covers only the SLO-breach windows (3 s, say) and
// its baseline the rest of the capture (19 s), and an unscaled diff shows
// nearly every frame shrinking. It returns the base unchanged, with a note
// saying why, when either profile does not say how long it covers.
func perSecondBase(prof, base, dir string) (path, note string, err error) {
	p, err := readProfile(prof)
	if err != nil {
		return "", "", err
	}
	b, err := readProfile(base)
	if err != nil {
		return "", "", err
	}
	if p.DurationNanos <= 0 || b.DurationNanos <= 0 {
		return base, "the profiles do not say how long they cover: the diff is in absolute time", nil
	}
	baseNanos := b.DurationNanos
	ratio := float64(p.DurationNanos) / float64(baseNanos)
	b.Scale(ratio)
	b.DurationNanos = p.DurationNanos
	b.Comments = append(b.Comments, fmt.Sprintf("baseline scaled by %.4f to the profile's %v (per second of time covered)",
		ratio, time.Duration(p.DurationNanos).Round(time.Millisecond)))
	path = filepath.Join(dir, "base-per-second.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		return "", "", fmt.Errorf("writing the scaled base: %w", err)
	}
	if err := b.Write(f); err != nil {
		f.Close()
		return "", "", fmt.Errorf("writing the scaled base: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("writing the scaled base: %w", err)
	}
	note = fmt.Sprintf("diff per second: %v of %s against %v of %s (scaled by %.3f)",
		time.Duration(p.DurationNanos).Round(time.Millisecond), filepath.Base(prof),
		time.Duration(baseNanos).Round(time.Millisecond), filepath.Base(base), ratio)
	return path, note, nil
}

func readProfile(path string) (*profile.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading profile: %w", err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading profile %s: %w", path, err)
	}
	return p, nil
}
