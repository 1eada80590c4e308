package modeldiff.trace;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
        probes.put(name, new Probe(name, tokens.length, cols, data));
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
