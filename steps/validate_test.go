package steps_test

import (
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/steps"
)

func TestValidateRejectsBadValuesNamingTheField(t *testing.T) {
	text := steps.Text("x")
	cases := []struct {
		step steps.Step
		want string
	}{
		{steps.File{Path: "", Content: text}, "Path: empty path"},
		{steps.File{Path: "etc/x", Content: text}, `Path: "etc/x" is not an absolute path`},
		{steps.File{Path: "/etc/../x", Content: text}, `is not clean`},
		{steps.File{Path: "/etc/x"}, "Content: missing"},
		{steps.File{Path: "/etc/x", Content: text, Mode: 0o10644}, "Mode: mode 010644 has bits outside 07777"},
		{steps.File{Path: "/etc/x", Content: text, Owner: "root;rm -rf /"}, `Owner: "root;rm -rf /" is not a valid user or group name`},
		{steps.File{Path: "/etc/x", Content: text, Group: "Wheel"}, "Group:"},
		{steps.File{Path: "/etc/x", Content: text, ValidateCmd: "visudo -c"}, "ValidateCmd:"},
		{steps.Dir{Path: "relative"}, "Path:"},
		{steps.Dir{Path: "/srv", Mode: 0o20000}, "Mode:"},
		{steps.AddUser{Name: "$(reboot)"}, "Name:"},
		{steps.AddUser{Name: "ok", Home: "home/ok"}, "Home:"},
		{steps.AddUser{Name: "ok", Groups: []string{"a b"}}, "Groups[0]:"},
		{steps.AddUser{Name: "ok", PasswordHash: "a\nb"}, "PasswordHash:"},
		{steps.Sudoers{Name: "deploy.conf", Content: text}, "Name:"},
		{steps.Sudoers{Name: "deploy"}, "Content: missing"},
		{steps.Upload{Src: "", Dest: "/x"}, "Src: empty"},
		{steps.Upload{Src: "a", Dest: "x"}, "Dest:"},
		{steps.Move{From: "/a", To: "/a"}, "To: same path"},
		{steps.Untar{Archive: "x.tar", Dest: "/opt"}, "Archive:"},
		{steps.Untar{Archive: "/x.tar", Dest: "/opt", StripComponents: -1}, "StripComponents:"},
		{steps.Unzip{Archive: "/x.zip", Dest: "/opt", Creates: "opt"}, "Creates:"},
		{steps.LineInFile{Path: "/x", Regexp: "(", Line: "a"}, "Regexp:"},
		{steps.LineInFile{Path: "/x", Line: "a\nb"}, "Line:"},
		{steps.KeyValue{Path: "/x", Key: " "}, "Key: empty"},
		{steps.Packages{}, "Names: empty"},
		{steps.Packages{Names: []string{"ok", "-o Dpkg::x"}}, "Names[1]:"},
		{steps.InstallUnit{Name: "tomcat node", Content: text}, `Name: "tomcat node" is not a systemd unit name`},
		{steps.Service{Name: "tomcat.service", State: "running"}, "State:"},
		{steps.Service{Name: "tomcat.service"}, "both unset"},
		{steps.Restart{Name: "a b.service"}, "Name:"},
		{steps.Command{}, "Line: empty"},
		{steps.Command{Line: "true", Creates: "x"}, "Creates:"},
	}
	for _, tc := range cases {
		t.Run(tc.step.String(), func(t *testing.T) {
			err := steps.Validate(tc.step)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestValidateAcceptsGoodValues(t *testing.T) {
	good := []steps.Step{
		steps.File{Path: "/etc/x.conf", Content: steps.Text("x"), Mode: 0o4755, Owner: "tomcat", Group: "tomcat", ValidateCmd: "sh -n %s"},
		steps.AddUser{Name: "tomcat", Home: "/opt/tomcat", Shell: "/usr/sbin/nologin", Groups: []string{"adm"}, PasswordHash: hash},
		steps.Sudoers{Name: "tomcat-restart", Content: steps.Text("x")},
		steps.InstallUnit{Name: "tomcat@node1.service", Content: steps.Text("x")},
		// A unit named without its type is a service, as systemctl reads it.
		steps.InstallUnit{Name: "mago3d-tomcat", Content: steps.Text("x")},
		steps.Service{Name: "mago3d-tomcat", State: steps.Started},
		steps.Restart{Name: "mago3d-tomcat"},
		steps.Reload{Name: "mago3d-tomcat"},
		steps.Packages{Names: []string{"openjdk-17-jre-headless", "libc6:amd64", "nginx=1.22*"}},
		steps.Command{Line: "true"},
	}
	for _, s := range good {
		if err := steps.Validate(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestARecipeRejectsAHandlerNotifiedThroughAnInnerNotifyThatItDoesNotDeclare(t *testing.T) {
	twice := steps.Notify(steps.Notify(steps.Command{Line: "true"}, "reload"), "restart")
	if got := steps.Notified(twice); strings.Join(got, ",") != "restart,reload" {
		t.Fatalf("Notified: got %q, want both wrappers' handlers, outer first", got)
	}
	r := steps.NewRecipe("web", twice).Handle("restart", steps.Restart{Name: "tomcat.service"})
	err := r.Validate()
	if err == nil || !strings.Contains(err.Error(), `notifies handler "reload", which recipe "web" does not declare`) {
		t.Fatalf("got %v, want the inner wrapper's undeclared handler named", err)
	}
	if err := r.Handle("reload", steps.Reload{Name: "tomcat.service"}).Validate(); err != nil {
		t.Fatalf("with both handlers declared: %v", err)
	}
}
