package targets_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cauldron-go/cauldron/targets"
)

func TestLoadFailsOnABrokenCountAndPassesOnAHealthySite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		skipped int // the request number whose count skips one
		wantErr string
	}{
		{"healthy", 0, ""},
		{"a skipped count", 7, "1 counts broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				count := n
				if tc.skipped > 0 && n >= tc.skipped {
					count++
				}
				mu.Unlock()
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "S.user1", Path: "/"})
				fmt.Fprintf(w, `{"app": "mago3d-user", "node": "user1", "session": "S.user1", "count": %d}`, count)
			}))
			defer srv.Close()
			users, duration, url := 1, "300ms", srv.URL
			err := targets.Load(context.Background(), &users, &duration, &url, nil)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("a healthy site: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadRefusesABadDuration(t *testing.T) {
	d, url := "soon", "http://127.0.0.1:1"
	err := targets.Load(context.Background(), nil, &d, &url, nil)
	if err == nil || !strings.Contains(err.Error(), "-duration=soon") {
		t.Fatalf("got %v", err)
	}
}
