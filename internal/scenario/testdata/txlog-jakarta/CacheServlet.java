// A cache refresh: each request to /cache?mb=N rebuilds N MiB of a cache
// of small entries that stays reachable until later refreshes replace it.
// Called in a burst, it is an allocation storm in the server's own heap:
// the known cause of the GC scenario (a small heap collects often, copying
// and marking many live objects, and every request thread stops with it).

package txlog;

import java.io.IOException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

public class CacheServlet extends HttpServlet {
    // 256-byte entries; the ring holds up to 64 MiB of them.
    private static final Object[] RING = new Object[64 * 1024 * 1024 / 256];
    private static int next;

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        int mb = 16;
        String p = req.getParameter("mb");
        if (p != null) {
            try {
                mb = Math.max(1, Math.min(256, Integer.parseInt(p)));
            } catch (NumberFormatException e) {
                resp.sendError(HttpServletResponse.SC_BAD_REQUEST, "mb: not a number");
                return;
            }
        }
        long entries = mb * 1024L * 1024 / 256;
        synchronized (RING) {
            for (long i = 0; i < entries; i++) {
                RING[next] = new long[30];
                next = (next + 7) % RING.length;
            }
        }
        resp.setContentType("text/plain");
        resp.getWriter().print("refreshed " + mb + " MiB\n");
    }
}
