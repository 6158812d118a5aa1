package bundle

import "testing"

func TestTargetName(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{PID: 7, Command: []string{"/usr/bin/java", "-Xmx1g", "-cp", "kafka.Kafka", "kafka.Kafka", "server.properties"}}, "kafka.Kafka (pid 7)"},
		{Target{PID: 8, Command: []string{"java", "-Djetty.home=/usr/share/jetty9", "-jar", "/usr/share/jetty9/start.jar"}}, "start.jar (pid 8)"},
		{Target{PID: 9, Command: []string{"java", "-m", "app/app.Main"}}, "app.Main (pid 9)"},
		{Target{PID: 10, Command: []string{"/opt/bin/server", "--port", "1"}}, "server (pid 10)"},
		{Target{PID: 11}, "pid 11"},
		{Target{Command: []string{"java", "Demo.java"}}, "Demo.java"},
	} {
		if got := tc.t.Name(); got != tc.want {
			t.Errorf("%v: Name() = %q, want %q", tc.t.Command, got, tc.want)
		}
	}
}
