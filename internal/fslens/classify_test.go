package fslens

import "testing"

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		path      string
		topic     string
		partition int
		kind      string
	}{
		{"/var/kafka/orders-0/00000000000000000000.log", "orders", 0, KindLog},
		{"/var/kafka/orders-12/00000000000000123456.index", "orders", 12, KindIndex},
		{"/var/kafka/orders-12/00000000000000123456.timeindex", "orders", 12, KindTimeIndex},
		{"/var/kafka/orders-12/00000000000000123456.txnindex", "orders", 12, KindIndex},
		{"/var/kafka/orders-12/00000000000000123456.snapshot", "orders", 12, KindSnapshot},
		{"/var/kafka/orders-12/leader-epoch-checkpoint", "orders", 12, KindCheckpoint},
		{"/var/kafka/orders-12/leader-epoch-checkpoint.tmp", "orders", 12, KindCheckpoint},
		{"/var/kafka/orders-12/partition.metadata", "orders", 12, KindOther},
		// Topics may contain '-', '.' and '_', and end in digits.
		{"/data/my-topic.v2-3/00000000000000000042.log", "my-topic.v2", 3, KindLog},
		{"/data/events-2024-7/00000000000000000000.log", "events-2024", 7, KindLog},
		{"/data/__consumer_offsets-49/00000000000000000000.log", "__consumer_offsets", 49, KindLog},
		{"/data/__cluster_metadata-0/00000000000000000000.log", "__cluster_metadata", 0, KindLog},
		// Being cleaned, swapped, deleted.
		{"/data/t-1/00000000000000000000.log.cleaned", "t", 1, KindLog},
		{"/data/t-1/00000000000000000000.log.swap", "t", 1, KindLog},
		{"/data/t-1/00000000000000000000.index.deleted", "t", 1, KindIndex},
		{"/data/t-1.0123456789abcdef0123456789abcdef-delete/00000000000000000000.log", "t", 1, KindLog},
		{"/data/t-1.0123456789abcdef0123456789abcdef-future/00000000000000000000.log", "t", 1, KindLog},
		// The log directory's own files.
		{"/var/kafka/recovery-point-offset-checkpoint", "", -1, KindCheckpoint},
		{"/var/kafka/recovery-point-offset-checkpoint.tmp", "", -1, KindCheckpoint},
		{"/var/kafka/replication-offset-checkpoint", "", -1, KindCheckpoint},
		{"/var/kafka/log-start-offset-checkpoint", "", -1, KindCheckpoint},
		{"/var/kafka/cleaner-offset-checkpoint", "", -1, KindCheckpoint},
		{"/var/kafka/meta.properties", "", -1, KindOther},
		// Not partitions.
		{"/opt/kafka/logs/server.log", "", -1, KindLog},
		{"/opt/kafka/logs-1x/server.log", "", -1, KindLog},
		{"/var/kafka/orders-/00000000000000000000.log", "", -1, KindLog},
		{"/var/kafka/orders-0x/a", "", -1, KindOther},
		{"/topic-0", "", -1, KindOther},
		{"relative-3/x.index", "relative", 3, KindIndex},
		{"", "", -1, KindOther},
		{"/var/kafka/orders-0/.tmp", "orders", 0, KindOther},
	} {
		topic, part, kind := Classify(tc.path)
		if topic != tc.topic || part != tc.partition || kind != tc.kind {
			t.Errorf("Classify(%q) = %q, %d, %q; want %q, %d, %q", tc.path, topic, part, kind, tc.topic, tc.partition, tc.kind)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("/var/kafka/orders-0/00000000000000000000.log")
	f.Add("/a-1.0123456789abcdef0123456789abcdef-delete/b.tmp.tmp")
	f.Fuzz(func(t *testing.T, p string) {
		topic, part, kind := Classify(p)
		if (topic == "") != (part < 0) {
			t.Fatalf("Classify(%q) = %q, %d", p, topic, part)
		}
		if kind == "" {
			t.Fatalf("Classify(%q): empty kind", p)
		}
	})
}
