package main

import (
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom"
)

func TestServeLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lim    serveLimits
		want   cleanroom.Config
		refuse bool
	}{
		{"defaults", serveLimits{}, cleanroom.Config{}, false},
		{"set", serveLimits{matchMiB: 256, columnMiB: 512, modelSample: 200000},
			cleanroom.Config{MatchMemory: 256 << 20, ColumnMemory: 512 << 20, ModelSample: 200000}, false},
		{"all people", serveLimits{modelSample: -1}, cleanroom.Config{ModelSample: -1}, false},
		{"negative match memory", serveLimits{matchMiB: -1}, cleanroom.Config{}, true},
		{"negative column memory", serveLimits{columnMiB: -5}, cleanroom.Config{}, true},
		{"column memory past a PiB", serveLimits{columnMiB: maxMiB + 1}, cleanroom.Config{}, true},
		{"model sample below -1", serveLimits{modelSample: -2}, cleanroom.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg cleanroom.Config
			err := tc.lim.apply(&cfg)
			if (err != nil) != tc.refuse {
				t.Fatalf("apply: %v, refused %v, want refused %v", err, err != nil, tc.refuse)
			}
			if err != nil {
				return
			}
			if cfg.MatchMemory != tc.want.MatchMemory || cfg.ColumnMemory != tc.want.ColumnMemory || cfg.ModelSample != tc.want.ModelSample {
				t.Fatalf("config %d/%d/%d, want %d/%d/%d", cfg.MatchMemory, cfg.ColumnMemory, cfg.ModelSample,
					tc.want.MatchMemory, tc.want.ColumnMemory, tc.want.ModelSample)
			}
		})
	}
}

// TestServeRefusesBadLimits: the flags reach apply, and a bad value is a
// usage error before the room is opened.
func TestServeRefusesBadLimits(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--data", t.TempDir(), "--column-memory", "-1"},
		{"serve", "--data", t.TempDir(), "--model-sample", "-7"},
	} {
		code, _, stderr := cli(args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage); stderr %s", args, code, stderr)
		}
	}
}
