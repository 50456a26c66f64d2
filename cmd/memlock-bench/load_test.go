package main

import "testing"

// TestLoadLen: consecutive calls differ (the exporter folds a run of
// identical ones), and every length covers the one page and no more.
func TestLoadLen(t *testing.T) {
	const page = 4096
	for n := range uint64(6) {
		l, next := loadLen(page, n), loadLen(page, n+1)
		if l == next {
			t.Errorf("calls %d and %d both of length %d", n, n+1, l)
		}
		if l == 0 || l > page || (l+page-1)/page != 1 {
			t.Errorf("call %d: length %d does not cover exactly one page", n, l)
		}
	}
}
