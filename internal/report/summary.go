package report

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/lockscope/lockscope/internal/merge"
)

// readSummary reads a summary.json that merge wrote.
func readSummary(path string) (*merge.Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading summary: %w", err)
	}
	var s merge.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading summary %s: %w (re-run lockscope merge on the bundle)", path, err)
	}
	return &s, nil
}
