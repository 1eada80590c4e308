package modeldiff.cli;

import modeldiff.forward.ForwardInput;
import modeldiff.forward.ForwardPass;
import modeldiff.forward.ProbeLevel;
import modeldiff.model.BadInputException;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorInfo;
import modeldiff.trace.Trace;
import picocli.CommandLine.Option;

import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Limits on what a command that runs a model may take: tokens, Java heap (estimated before any weight is read) and
 * wall time per implementation. Each refusal is a one-line {@link BadInputException} (exit 2), before anything is
 * written.
 */
final class Limits {
    static final int DEFAULT_MAX_TOKENS = 4096;

    /** Fraction of the JVM's maximum heap a run may be estimated to need. */
    static final double HEAP_FRACTION = 0.9;

    @Option(names = "--max-tokens", defaultValue = "" + DEFAULT_MAX_TOKENS, paramLabel = "N",
            description = "Refuse inputs longer than N tokens (default: ${DEFAULT-VALUE}).")
    int maxTokens = DEFAULT_MAX_TOKENS;

    @Option(names = "--timeout", paramLabel = "SECONDS",
            description = "Abort when one implementation's pass takes longer than this (default: no limit).")
    Double timeoutSeconds;

    void checkTokens(int n) {
        if (maxTokens < 1) throw new BadInputException("--max-tokens must be at least 1, got " + maxTokens);
        if (n > maxTokens)
            throw new BadInputException("input of " + n + " tokens is over --max-tokens " + maxTokens + "; raise --max-tokens to run it");
    }

    void checkTimeout() {
        if (timeoutSeconds != null && !(timeoutSeconds > 0 && timeoutSeconds <= 1e9))
            throw new BadInputException("--timeout must be a positive number of seconds, got " + timeoutSeconds);
    }

    /** The pass, aborted with a one-line message when one run of it exceeds --timeout. */
    ForwardPass timed(ForwardPass pass) {
        return timeoutSeconds == null ? pass : new TimedPass(pass, timeoutSeconds);
    }

    /** Refuses a run whose estimated heap exceeds what this JVM may use (checked after headers, before weights). */
    void checkMemory(Model model, int tokens, ProbeLevel level, int tracesHeld) {
        long need = estimateHeapBytes(model, tokens, level, tracesHeld);
        long max = Runtime.getRuntime().maxMemory();
        if (need > HEAP_FRACTION * max)
            throw new BadInputException(model.dir + ": this run needs about " + mib(need) + " of Java heap (" + tokens
                    + " tokens, " + tracesHeld + " trace(s) held), more than the " + mib(max)
                    + " this JVM may use; give fewer tokens or more heap (MODELDIFF_JAVA_OPTS=-Xmx...)");
    }

    /**
     * A simple upper estimate of the heap one command holds at its peak: every trace it keeps (float64 probes) plus
     * the working set of one float64 pass (the largest layer weight held whole, a few activation buffers of the
     * widest layer, the logits and the attention scores). forward/ has no estimate of its own yet; when it gains one
     * (a peak-memory estimate for the reference pass), this should defer to it.
     */
    static long estimateHeapBytes(Model model, int tokens, ProbeLevel level, int tracesHeld) {
        ModelConfig c = model.config;
        long t = tokens, h = c.hiddenSize, f = c.intermediateSize, v = c.vocabSize, layers = c.numLayers;
        long qd = c.qDim(), kvd = c.kvDim();
        long perLayer = level == ProbeLevel.ALL ? t * (5 * h + 2 * qd + 2 * kvd + f) : t * h;
        long trace = t * (2 * h + v) + layers * perLayer;
        long largest = 0;
        String embed = model.embedding().name(), head = model.lmHead().name();
        for (TensorInfo ti : model.store.tensors().values())
            if (!ti.name().equals(embed) && !ti.name().equals(head)) largest = Math.max(largest, ti.elementCount());
        long widest = Math.max(Math.max(h, 2 * f), qd + 2 * kvd);
        long working = largest + 1024 * h + 6 * t * widest + t * v + (long) c.numHeads * t * t;
        return 8 * (Math.max(1, tracesHeld) * trace + working) + (64L << 20);
    }

    static String mib(long bytes) {
        return bytes >= (1L << 30) ? String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30))
                : String.format(Locale.ROOT, "%d MiB", Math.max(1, bytes >> 20));
    }

    /**
     * The thread timed runs execute on: one thread reused while runs finish in time, so a pass that binds state to
     * its thread (a CUDA context) sees the same thread each run; replaced after a timeout abandons it.
     */
    private static ExecutorService worker;

    private static synchronized ExecutorService worker() {
        if (worker == null) {
            worker = Executors.newSingleThreadExecutor(r -> {
                Thread th = new Thread(r, "modeldiff-timed-pass");
                th.setDaemon(true);
                return th;
            });
        }
        return worker;
    }

    private static synchronized void abandonWorker() {
        if (worker != null) worker.shutdownNow();
        worker = null;
    }

    /** Runs {@code body} on a daemon thread; past the limit the thread is interrupted and abandoned. */
    static <T> T withTimeout(String what, double seconds, Callable<T> body) {
        Future<T> task = worker().submit(body);
        try {
            return task.get((long) Math.ceil(seconds * 1000), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            task.cancel(true);
            abandonWorker();
            throw new BadInputException(what + ": timed out after " + format(seconds) + " s (--timeout); aborted, nothing written");
        } catch (InterruptedException e) {
            task.cancel(true);
            abandonWorker();
            Thread.currentThread().interrupt();
            throw new BadInputException(what + ": interrupted");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) throw re;
            if (cause instanceof Error err) throw err;
            throw new IllegalStateException(cause);
        }
    }

    private static String format(double s) {
        return s == Math.rint(s) ? Long.toString((long) s) : Double.toString(s);
    }

    /** A pass whose run and runLayers are each bounded by the timeout. */
    static final class TimedPass implements ForwardPass {
        private final ForwardPass inner;
        private final double seconds;

        TimedPass(ForwardPass inner, double seconds) {
            this.inner = inner;
            this.seconds = seconds;
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public String dtype() {
            return inner.dtype();
        }

        @Override
        public Trace run(Model model, ForwardInput input, ProbeLevel level) {
            return withTimeout(inner.name(), seconds, () -> inner.run(model, input, level));
        }

        @Override
        public boolean canReplay() {
            return inner.canReplay();
        }

        @Override
        public Trace runLayers(Model model, ForwardInput input, ProbeLevel level, int from, int to, double[] residualIn) {
            return withTimeout(inner.name(), seconds, () -> inner.runLayers(model, input, level, from, to, residualIn));
        }
    }
}
