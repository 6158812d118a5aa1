// A transaction log with a group-commit sync thread: the shape of the
// hand-off between request threads and one I/O thread that real servers
// (Kafka's log flusher, databases' WAL writers) use. Request threads queue a
// record and park on a future; the single txlog-sync thread writes a batch,
// calls fdatasync (FileChannel.force(false)) and completes the batch's
// futures. So a slow journal commit shows as request threads parked in
// CompletableFuture.get while txlog-sync is off-CPU in fdatasync.
//
// The jakarta.servlet copy of testdata/txlog/TxLogServlet.java for Tomcat
// 10.1 (Servlet 6.0): from the package line on, the code is that file's
// with javax.servlet renamed (TestTomcatWebappMatchesJetty checks).

package txlog;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

public class TxLogServlet extends HttpServlet {
    static final int RECORD_SIZE = 1024;
    // Past this size the log starts over, so a long run does not fill the
    // (small, loop-mounted) filesystem.
    static final long ROLL_SIZE = 64L << 20;
    static final int MAX_BATCH = 1024;

    static final class Entry {
        final ByteBuffer record;
        final CompletableFuture<Long> done = new CompletableFuture<>();

        Entry(ByteBuffer record) {
            this.record = record;
        }
    }

    private final LinkedBlockingQueue<Entry> queue = new LinkedBlockingQueue<>();
    private FileChannel channel;
    private Thread sync;
    private volatile boolean stopping;

    @Override
    public void init() throws ServletException {
        String dir = System.getProperty("txlog.dir");
        if (dir == null || dir.isEmpty()) {
            throw new ServletException("system property txlog.dir is not set");
        }
        try {
            channel = FileChannel.open(new File(dir, "txlog.dat").toPath(),
                    StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new ServletException("opening " + dir + "/txlog.dat", e);
        }
        sync = new Thread(this::syncLoop, "txlog-sync");
        sync.setDaemon(true);
        sync.start();
    }

    @Override
    public void destroy() {
        stopping = true;
        sync.interrupt();
        try {
            sync.join(5000);
            channel.close();
        } catch (InterruptedException | IOException e) {
            log("stopping txlog", e);
        }
    }

    private void syncLoop() {
        List<Entry> batch = new ArrayList<>(MAX_BATCH);
        ByteBuffer[] bufs = new ByteBuffer[0];
        while (!stopping) {
            try {
                batch.add(queue.take());
            } catch (InterruptedException e) {
                break;
            }
            queue.drainTo(batch, MAX_BATCH - 1);
            try {
                if (channel.size() >= ROLL_SIZE) {
                    channel.truncate(0);
                }
                if (bufs.length != batch.size()) {
                    bufs = new ByteBuffer[batch.size()];
                }
                for (int i = 0; i < bufs.length; i++) {
                    bufs[i] = batch.get(i).record;
                }
                long off = channel.position();
                while (bufs[bufs.length - 1].hasRemaining()) {
                    channel.write(bufs);
                }
                channel.force(false);
                for (int i = 0; i < batch.size(); i++) {
                    batch.get(i).done.complete(off + (long) i * RECORD_SIZE);
                }
            } catch (IOException e) {
                for (Entry en : batch) {
                    en.done.completeExceptionally(e);
                }
            }
            batch.clear();
        }
        Entry en;
        while ((en = queue.poll()) != null) {
            en.done.completeExceptionally(new IOException("txlog stopped"));
        }
    }

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        append(req, resp);
    }

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        append(req, resp);
    }

    private void append(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String key = req.getParameter("key");
        if (key == null) {
            key = "";
        }
        ByteBuffer rec = ByteBuffer.allocate(RECORD_SIZE);
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        rec.putInt(k.length).put(k, 0, Math.min(k.length, RECORD_SIZE - 5));
        while (rec.position() < RECORD_SIZE - 1) {
            rec.put((byte) 'x');
        }
        rec.put((byte) '\n').flip();
        Entry e = new Entry(rec);
        long off;
        try {
            queue.put(e);
            off = e.done.get();
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            resp.sendError(HttpServletResponse.SC_SERVICE_UNAVAILABLE, "interrupted");
            return;
        } catch (ExecutionException ex) {
            resp.sendError(HttpServletResponse.SC_INTERNAL_SERVER_ERROR, "txlog: " + ex.getCause());
            return;
        }
        resp.setContentType("text/plain");
        resp.getWriter().print("ok " + off + "\n");
    }
}
