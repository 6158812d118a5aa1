package kafkaconf

import (
	"os"
	"testing"
)

// TestBrokerID: the demo broker's flag, Kafka's overrides (both forms),
// and the server.properties a broker was started with, relative to its
// working directory or absolute.
func TestBrokerID(t *testing.T) {
	files := map[string]string{"/opt/kafka/config/server.properties": "# a comment\nprocess.roles=broker\nnode.id = 3\n",
		"/etc/kafka/server.properties": "broker.id=7\nlog.dirs=/var/lib/kafka\n"}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"java", "-cp", "x", "kafka.Kafka", "--port=9092", "--broker-id=2"}, "2"},
		{[]string{"java", "kafka.Kafka", "--broker-id", "4", "--port", "9092"}, "4"},
		{[]string{"java", "kafka.Kafka", "/etc/kafka/server.properties", "--override", "broker.id=5"}, "5"},
		{[]string{"java", "kafka.Kafka", "/etc/kafka/server.properties", "--override=broker.id=6"}, "6"},
		{[]string{"java", "kafka.Kafka", "/etc/kafka/server.properties"}, "7"},
		{[]string{"java", "kafka.Kafka", "config/server.properties"}, "3"},
	} {
		conf, err := Read(c.args, "/opt/kafka", read)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if got := conf.BrokerID(); got != c.want {
			t.Errorf("%q: broker id %q, want %q", c.args, got, c.want)
		}
	}
	if _, err := Read([]string{"java", "kafka.Kafka", "missing.properties"}, "/opt/kafka", read); err == nil {
		t.Error("a missing properties file: no error")
	}
	if _, err := Read([]string{"java", "-jar", "/usr/share/jetty9/start.jar"}, "/", read); err == nil {
		t.Error("jetty: no error")
	}
}
