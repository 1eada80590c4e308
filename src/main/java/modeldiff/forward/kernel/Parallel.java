package modeldiff.forward.kernel;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * Runs a fixed list of independent tasks on a fixed number of threads. Callers split their work so that every output
 * element belongs to exactly one task and is computed in an order that depends on the task index only, never on which
 * thread runs it or when: results are then bit-identical for any thread count (tested in ThreadCountTest).
 * <p>
 * One daemon pool per thread count, shared by every pass that asks for it; a ForkJoinPool, so a task that itself calls
 * {@link #forEach} (or a caller from another pool, as the hunt's) cannot deadlock it.
 */
public final class Parallel {
    /** Threads a pass uses unless told otherwise: -Dmodeldiff.threads=N, else every core the JVM sees. */
    public static int defaultThreads() {
        String s = System.getProperty("modeldiff.threads");
        if (s != null) {
            try {
                int n = Integer.parseInt(s.trim());
                if (n >= 1) return n;
            } catch (NumberFormatException ignored) {
                // fall through to the core count
            }
        }
        return Math.max(1, Runtime.getRuntime().availableProcessors());
    }

    private static final Map<Integer, Parallel> BY_THREADS = new ConcurrentHashMap<>();
    public static final Parallel SERIAL = new Parallel(1);

    private final int threads;
    private final ForkJoinPool pool;

    private Parallel(int threads) {
        this.threads = threads;
        this.pool = threads == 1 ? null : new ForkJoinPool(threads, p -> {
            ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
            t.setDaemon(true);
            t.setName("modeldiff-kernel-" + t.getPoolIndex());
            return t;
        }, null, false);
    }

    public static Parallel of(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be positive, got " + threads);
        return threads == 1 ? SERIAL : BY_THREADS.computeIfAbsent(threads, Parallel::new);
    }

    public int threads() {
        return threads;
    }

    /** Calls {@code body} once for each task index in [0, tasks); returns when all have run. */
    public void forEach(int tasks, IntConsumer body) {
        if (pool == null || tasks <= 1) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        pool.invoke(new Range(body, 0, tasks));
    }

    /** The body of {@link #forRanges}: one contiguous slice [lo, hi). */
    @FunctionalInterface
    public interface Slice {
        void accept(int lo, int hi);
    }

    /**
     * Calls {@code body} on contiguous slices covering [0, n), each at least {@code grain} long (except when n is
     * smaller), a few per thread. For element-wise and row-wise work whose result does not depend on the slicing.
     */
    public void forRanges(int n, int grain, Slice body) {
        int tasks = Math.max(1, Math.min(threads * 4, n / Math.max(1, grain)));
        if (tasks == 1 || pool == null) {
            body.accept(0, n);
            return;
        }
        forEach(tasks, t -> body.accept((int) ((long) n * t / tasks), (int) ((long) n * (t + 1) / tasks)));
    }

    private static final class Range extends RecursiveAction {
        private static final long serialVersionUID = 1L;
        private final transient IntConsumer body;
        private final int lo, hi;

        Range(IntConsumer body, int lo, int hi) {
            this.body = body;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                body.accept(lo);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Range(body, lo, mid), new Range(body, mid, hi));
        }
    }
}
