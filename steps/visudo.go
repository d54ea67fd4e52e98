package steps

// Visudo is the runbook's `sudo visudo`, done safely: it installs sudo rules as the
// drop-in /etc/sudoers.d/<Name> (mode 0440 root:root), after `visudo -cf` has checked
// them on a temporary copy. Rules visudo rejects are never installed (one broken line
// can lock every user out of sudo) and the step fails with visudo's message; the
// working rules stay. Name takes letters, digits, '-' and '_' only: sudo skips a
// drop-in whose name holds a dot.
//
//	steps.Visudo{Name: "gaia3d-tomcat", Content: steps.Text(
//		"gaia3d ALL=(root) NOPASSWD: /usr/bin/systemctl restart mago3d-tomcat.service\n")}
//
// Visudo is the card's name for Sudoers: the two are one type.
type Visudo = Sudoers
