package targets

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cauldron-go/cauldron/lab"
	"github.com/cauldron-go/cauldron/loadcheck"
)

// Load drives session-bound load through the cluster (both sites of the lab, or -url and -adminurl) and fails on any failed request or broken session count.
//
// Flags: -users=N virtual users (default 16), each with its own cookie jar, spread
// over the sites; -duration=D (default 30s, at most 2h); -url=URL the user site and
// -adminurl=URL the admin site (default the lab's HAProxy on 127.0.0.1; with -url
// alone, only that site). A live line every 5 s, a summary at the end; the exit status
// is non-zero on any failed request, broken count or lost session.
func Load(ctx context.Context, users *int, duration *string, url *string, adminurl *string) error {
	o, err := loadOptions(deref(users), deref(duration), deref(url), deref(adminurl))
	if err != nil {
		return err
	}
	o.Live = os.Stdout
	for _, s := range o.Sites {
		fmt.Printf("load: %s site %s\n", s.Name, s.URL)
	}
	// The header says what will run: the check fills in its defaults only when it starts.
	fmt.Printf("load: %d users for %s\n", cmp.Or(o.Users, loadcheck.DefaultUsers), cmp.Or(o.Duration, loadcheck.DefaultDuration))
	r, err := loadcheck.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Print(r)
	return r.Err()
}

// loadOptions turns the target's flags into the check's options.
func loadOptions(users int, duration, userURL, adminURL string) (loadcheck.Options, error) {
	o := loadcheck.Options{Users: users}
	if duration != "" {
		d, err := time.ParseDuration(duration)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("-duration=%s: want a positive duration such as 30s or 5m", duration)
		}
		o.Duration = d
	}
	if userURL == "" && adminURL == "" {
		l, err := lab.Describe(lab.Options{})
		if err != nil {
			return o, err
		}
		userURL = fmt.Sprintf("http://127.0.0.1:%d", l.HTTPPort)
		adminURL = fmt.Sprintf("http://127.0.0.1:%d", l.AdminPort)
	}
	if userURL != "" {
		o.Sites = append(o.Sites, loadcheck.Site{Name: "user", URL: userURL})
	}
	if adminURL != "" {
		o.Sites = append(o.Sites, loadcheck.Site{Name: "admin", URL: adminURL})
	}
	return o, nil
}
