package modeldiff.trace;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The probes one forward pass recorded, in order, with what produced them. Values are held as float64 whatever the
 * producer computed in (an F32 trace widens exactly).
 */
public final class Trace {
    public static final String FORMAT = "modeldiff-trace/1";

    /** One probe: [rows = tokens, cols = width] row-major. */
    public record Probe(String name, int rows, int cols, double[] data) {
        public Probe {
            if (data.length != (long) rows * cols) throw new IllegalArgumentException(name + ": data length " + data.length + " != " + rows + "x" + cols);
        }

        public double at(int row, int col) {
            return data[row * cols + col];
        }

        public double[] row(int r) {
            double[] out = new double[cols];
            System.arraycopy(data, r * cols, out, 0, cols);
            return out;
        }
    }

    private final String producer;
    private final String dtype;
    private final String device;
    private final int[] tokens;
    private final long positionOffset;
    private final Map<String, Probe> probes = new LinkedHashMap<>();
    private final Map<String, String> extra = new LinkedHashMap<>();

    public Trace(String producer, String dtype, String device, int[] tokens, long positionOffset) {
        this.producer = producer;
        this.dtype = dtype;
        this.device = device;
        this.tokens = tokens.clone();
        this.positionOffset = positionOffset;
    }

    public void put(String name, int cols, double[] data) {
        if (probes.containsKey(name)) throw new IllegalStateException("probe recorded twice: " + name);
        Probe p = new Probe(name, tokens.length, cols, data);
        probes.put(name, p);
        Consumer<Probe> w = WATCHER.get();
        if (w != null) w.accept(p);
    }

    /** Thrown by a watcher (see {@link #watching}) to end the run that is recording; carries no stack trace. */
    public static final class Stop extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public Stop(String probe) {
            super("stopped at " + probe, null, false, false);
        }
    }

    private static final ThreadLocal<Consumer<Probe>> WATCHER = new ThreadLocal<>();

    /**
     * Runs {@code run} with {@code watcher} seeing every probe any trace records on this thread, as it is recorded
     * (passes record from the thread that called them). The hunt scores a candidate run probe by probe this way and
     * may end it early by throwing {@link Stop}, without every pass needing a hook of its own.
     */
    public static <T> T watching(Consumer<Probe> watcher, Supplier<T> run) {
        Consumer<Probe> previous = WATCHER.get();
        WATCHER.set(watcher);
        try {
            return run.get();
        } finally {
            if (previous == null) WATCHER.remove();
            else WATCHER.set(previous);
        }
    }

    /** Extra metadata (e.g. "planted"), kept in the file's __metadata__. */
    public void putExtra(String key, String value) {
        extra.put(key, value);
    }

    public Map<String, String> extra() {
        return Collections.unmodifiableMap(extra);
    }

    public Probe probe(String name) {
        return probes.get(name);
    }

    public boolean has(String name) {
        return probes.containsKey(name);
    }

    public List<String> probeNames() {
        return new ArrayList<>(probes.keySet());
    }

    public Map<String, Probe> probes() {
        return Collections.unmodifiableMap(probes);
    }

    public String producer() {
        return producer;
    }

    public String dtype() {
        return dtype;
    }

    public String device() {
        return device;
    }

    public int[] tokens() {
        return tokens.clone();
    }

    public long positionOffset() {
        return positionOffset;
    }
}
