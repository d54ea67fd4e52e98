package loadcheck_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/cauldron-go/cauldron/loadcheck"
)

// Start the load, do what must go unnoticed, then Stop and read the result.
func ExampleStart() {
	count := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count++ // one user: no two requests at once
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "A1.user1", Path: "/"})
		fmt.Fprintf(w, `{"app": "mago3d-user", "node": "user1", "session": "A1.user1", "count": %d}`, count)
	}))
	defer srv.Close()

	check, err := loadcheck.Start(context.Background(), loadcheck.Options{
		Sites: []loadcheck.Site{{Name: "user", URL: srv.URL}},
		Users: 1, Duration: time.Minute, MaxRequests: 100,
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... restart a node, freeze a host ...
	r := check.Wait() // or check.Stop() to end it now
	fmt.Println(r.Requests, "requests,", r.FailedTotal, "failed,", r.Broken, "broken, ok:", r.OK())
	// Output: 100 requests, 0 failed, 0 broken, ok: true
}
