package modeldiff.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.numeric.Precision;
import modeldiff.util.AtomicFiles;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file atomically: traces, synthetic models, test fixtures. Values are given as float64 and
 * encoded to the requested dtype (F16/BF16 by round-to-nearest-even from the float32 value). A tensor's values come
 * either from an array or from a {@link Values} source asked for one chunk at a time, so a multi-GB tensor is written
 * without ever being held in memory.
 */
public final class SafeTensorsWriter {
    /** Elements asked of a {@link Values} source at once. */
    public static final int CHUNK = 1 << 20;

    /** Values of one tensor, produced on demand: row-major elements [first, first + n) into out[0, n). */
    @FunctionalInterface
    public interface Values {
        void fill(long first, double[] out, int n);
    }

    private record Entry(String name, DType dtype, long[] shape, long count, Values values) {
    }

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafeTensorsWriter add(String name, DType dtype, long[] shape, double[] values) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n != values.length) throw new IllegalArgumentException(name + ": " + values.length + " values for shape of " + n);
        return add(name, dtype, shape, (first, out, count) -> System.arraycopy(values, (int) first, out, 0, count));
    }

    /** A tensor whose values are produced chunk by chunk while the file is written. */
    public SafeTensorsWriter add(String name, DType dtype, long[] shape, Values values) {
        long n = 1;
        for (long d : shape) n *= d;
        if (dtype != DType.F64 && dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16)
            throw new IllegalArgumentException("cannot encode " + dtype);
        entries.add(new Entry(name, dtype, shape.clone(), n, values));
        return this;
    }

    public void write(Path file) {
        ObjectNode header = SafeTensorsFile.JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode node = header.putObject(e.name);
            node.put("dtype", e.dtype.name());
            var shape = node.putArray("shape");
            for (long d : e.shape) shape.add(d);
            long len = e.count * e.dtype.bytes;
            node.putArray("data_offsets").add(offset).add(offset + len);
            offset += len;
        }
        byte[] json;
        try {
            json = SafeTensorsFile.JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
        // Pad with spaces so tensor data starts 8-byte aligned, as the reference writer does.
        int padded = (json.length + 7) / 8 * 8;
        AtomicFiles.write(file, raw -> {
            OutputStream out = new BufferedOutputStream(raw, 1 << 16);
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(json);
            for (int i = json.length; i < padded; i++) out.write(' ');
            ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            double[] chunk = new double[(int) Math.min(CHUNK, Math.max(1, maxCount()))];
            for (Entry e : entries) {
                for (long first = 0; first < e.count; first += chunk.length) {
                    int n = (int) Math.min(chunk.length, e.count - first);
                    e.values.fill(first, chunk, n);
                    for (int i = 0; i < n; i++) {
                        double v = chunk[i];
                        if (buf.remaining() < 8) flush(buf, out);
                        switch (e.dtype) {
                            case F64 -> buf.putDouble(v);
                            case F32 -> buf.putFloat((float) v);
                            case BF16 -> buf.putShort((short) Precision.BF16.toBits((float) v));
                            case F16 -> buf.putShort((short) Precision.FP16.toBits((float) v));
                            default -> throw new IllegalStateException();
                        }
                    }
                }
            }
            flush(buf, out);
            out.flush();
        });
    }

    private long maxCount() {
        long m = 0;
        for (Entry e : entries) m = Math.max(m, e.count);
        return m;
    }

    /** Bytes of tensor data the file will hold (header excluded). */
    public long dataBytes() {
        long b = 0;
        for (Entry e : entries) b += e.count * e.dtype.bytes;
        return b;
    }

    private static void flush(ByteBuffer buf, OutputStream out) throws IOException {
        out.write(buf.array(), 0, buf.position());
        buf.clear();
    }
}
