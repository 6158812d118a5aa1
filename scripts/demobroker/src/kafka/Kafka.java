package kafka;

import java.io.File;
import kafka.log.LogConfig;
import kafka.log.LogManager;
import kafka.network.RequestChannel;
import kafka.network.SocketServer;
import kafka.server.Cluster;
import kafka.server.Faults;
import kafka.server.ReplicaFetcherThread;
import kafka.server.GCStorm;
import kafka.server.JournalPressure;
import kafka.server.KafkaApis;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRequestHandler;
import kafka.server.ReplicaManager;

/**
 * lockscope's demo broker: a single-node imitation of Kafka's produce path that real Kafka
 * clients (franz-go, librdkafka) can produce to. The main class is named as Kafka's is, so that
 * tools finding "the broker" by main class find this one too.
 */
public final class Kafka {
    public static void main(String[] args) throws Exception {
        KafkaConfig config;
        try {
            config = KafkaConfig.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        File logDir = new File(config.logDir);
        LogConfig logConfig = new LogConfig(config.segmentBytes, config.flushMessages, config.stallMs, config.stallEvery);
        LogManager logManager = new LogManager(logDir, logConfig, config.flushIntervalMs);
        Cluster cluster;
        try {
            cluster = config.cluster.isEmpty() ? Cluster.single(config.brokerId, config.advertisedHost, config.port)
                    : Cluster.parse(config.cluster, config.brokerId, config.replicationFactor);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        ReplicaManager replicaManager = new ReplicaManager(logManager, config.partitions, config.autoCreateTopics,
                cluster, config.brokerId, config.replicaLagTimeMaxMs);
        RequestChannel channel = new RequestChannel(config.queuedMaxRequests);
        KafkaRequestHandler[] handlers = new KafkaRequestHandler[config.ioThreads];
        SocketServer socketServer = new SocketServer(config.listenHost, config.port, config.brokerId,
                config.networkThreads, config.socketRequestMaxBytes, channel);
        if (config.advertisedPort == 0) config.advertisedPort = socketServer.boundPort();
        KafkaApis apis = new KafkaApis(replicaManager, config);
        apis.setRequestChannel(channel);
        for (int i = 0; i < handlers.length; i++) {
            handlers[i] = new KafkaRequestHandler(channel, apis);
            new Thread(handlers[i], "data-plane-kafka-request-handler-" + i).start();
        }
        if (!config.requestLog.isEmpty()) kafka.network.RequestLog.open(config.requestLog);
        Faults.schedule(config.faultOnMs, config.faultOffMs);
        if (config.pressureThreads > 0) new JournalPressure(logDir, config.pressureWriteKb).start(config.pressureThreads);
        if (config.gcStormMbS > 0) new GCStorm(config.gcStormMbS, config.gcStormRetainMb).start();
        if (config.appendMode.equals("handoff")) replicaManager.startLogWriter();
        if (cluster.replicated()) {
            // Followers fetch from every other broker; the leader's ISR check runs as Kafka's
            // isr-expiration task does.
            for (Cluster.Broker b : cluster.brokers) {
                if (b.id != config.brokerId) new ReplicaFetcherThread(b, config.brokerId, replicaManager).start();
            }
            logManager.schedule(replicaManager::checkReplicas, 100);
        }

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            socketServer.shutdown();
            for (KafkaRequestHandler h : handlers) h.shutdown();
            logManager.shutdown();
        }, "kafka-shutdown-hook"));

        // The line the test harness and scripts wait for; keep its form.
        System.out.println("demo broker listening on " + config.listenHost + ":" + socketServer.boundPort()
                + " log-dir=" + logDir.getAbsolutePath() + " pid=" + ProcessHandle.current().pid());
        System.out.flush();
    }
}
