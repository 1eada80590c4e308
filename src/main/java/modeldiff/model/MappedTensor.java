package modeldiff.model;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;

/**
 * One tensor's bytes memory-mapped read-only, decoded to float64 run by run on request. Passes that stream a model
 * (the reference's tiled matrix products) open one per weight matrix and close it when the product is done:
 * {@link #close} unmaps at once instead of when the garbage collector gets to the buffer, so the pages of a 26 GB
 * model are never all mapped (and counted in the resident set) together.
 * <p>
 * A mapping is int-indexed, so tensors over {@link #CHUNK} bytes are mapped in chunks that overlap by {@link #OVERLAP}
 * bytes: any run of at most that many bytes starting in a chunk lies inside it.
 */
public final class MappedTensor implements AutoCloseable {
    static final long CHUNK = 1L << 30;
    static final long OVERLAP = 1L << 24;

    /** Rounds each decoded value (as a float) before it is widened: lowp's WEIGHT_LOAD. */
    @FunctionalInterface
    public interface FloatRounding {
        float apply(float v);
    }

    private final TensorInfo info;
    private final int width;
    private final MappedByteBuffer[] chunks;
    /** Non-null for a dequantized view: values come from its data and scale tensors, not from {@link #chunks}. */
    private final Quantized.Reader quantized;
    private boolean closed;

    private MappedTensor(TensorInfo info, MappedByteBuffer[] chunks, Quantized.Reader quantized) {
        this.info = info;
        this.width = info.dtype().bytes;
        this.chunks = chunks;
        this.quantized = quantized;
    }

    public static MappedTensor open(TensorInfo t) {
        if (t.quantized() != null) return new MappedTensor(t, null, new Quantized.Reader(t));
        if (!t.dtype().decodable)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "dtype " + t.dtype() + " cannot hold weights");
        return openRaw(t);
    }

    /** The stored bytes of any tensor, decodable or not (the data and scales of a quantized weight). */
    static MappedTensor openRaw(TensorInfo t) {
        long bytes = t.elementCount() * t.dtype().bytes;
        int n = (int) Math.max(1, (bytes + CHUNK - 1) / CHUNK);
        MappedByteBuffer[] chunks = new MappedByteBuffer[n];
        try (FileChannel ch = FileChannel.open(t.file(), StandardOpenOption.READ)) {
            if (t.fileOffset() + bytes > ch.size())
                throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "data extends past the end of the file");
            for (int i = 0; i < n; i++) {
                long start = i * CHUNK, len = Math.min(bytes - start, CHUNK + OVERLAP);
                chunks[i] = ch.map(FileChannel.MapMode.READ_ONLY, t.fileOffset() + start, len);
                chunks[i].order(ByteOrder.LITTLE_ENDIAN);
            }
        } catch (IOException e) {
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "cannot map: " + e.getMessage());
        }
        return new MappedTensor(t, chunks, null);
    }

    /** Stored byte {@code b} (0..255) of the tensor's data. */
    int byteAt(long b) {
        return chunks[(int) (b / CHUNK)].get((int) (b % CHUNK)) & 0xff;
    }

    /** Element {@code i} of a stored float tensor (a block scale), widened exactly; safe from several threads. */
    double at(long i) {
        if (i < 0 || i >= info.elementCount()) throw new IllegalArgumentException("element " + i + " outside tensor " + info.name());
        long b = i * width;
        ByteBuffer buf = chunks[(int) (b / CHUNK)];
        int o = (int) (b % CHUNK);
        return switch (info.dtype()) {
            case F64 -> buf.getDouble(o);
            case F32 -> buf.getFloat(o);
            case BF16 -> Float.intBitsToFloat((buf.getShort(o) & 0xffff) << 16);
            case F16 -> HalfBits.toFloat(buf.getShort(o) & 0xffff);
            default -> throw new IllegalStateException("not a float tensor: " + info.dtype());
        };
    }

    public TensorInfo info() {
        return info;
    }

    /**
     * Elements [first, first + count) (row-major element index) widened exactly to float64 into
     * {@code dst[dstOff + i·dstStride]}; with a rounding, each value is first taken as a float and rounded.
     */
    public void decode(long first, int count, double[] dst, int dstOff, int dstStride, FloatRounding rounding) {
        if (closed) throw new IllegalStateException("tensor " + info.name() + " already unmapped");
        if (first < 0 || count < 0 || first + count > info.elementCount())
            throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") outside tensor " + info.name());
        if (quantized != null) {
            quantized.decode(first, count, dst, dstOff, dstStride, rounding);
            return;
        }
        long byteStart = first * width;
        if ((long) count * width > OVERLAP) throw new IllegalArgumentException("run of " + count + " elements too long");
        ByteBuffer buf = chunks[(int) (byteStart / CHUNK)];
        int at = (int) (byteStart % CHUNK);
        switch (info.dtype()) {
            case BF16 -> {
                if (rounding == null)
                    for (int i = 0; i < count; i++)
                        dst[dstOff + i * dstStride] = Float.intBitsToFloat((buf.getShort(at + 2 * i) & 0xffff) << 16);
                else
                    for (int i = 0; i < count; i++)
                        dst[dstOff + i * dstStride] = rounding.apply(Float.intBitsToFloat((buf.getShort(at + 2 * i) & 0xffff) << 16));
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    float f = HalfBits.toFloat(buf.getShort(at + 2 * i) & 0xffff);
                    dst[dstOff + i * dstStride] = rounding == null ? f : rounding.apply(f);
                }
            }
            case F32 -> {
                for (int i = 0; i < count; i++) {
                    float f = buf.getFloat(at + 4 * i);
                    dst[dstOff + i * dstStride] = rounding == null ? f : rounding.apply(f);
                }
            }
            case F64 -> {
                for (int i = 0; i < count; i++) {
                    double d = buf.getDouble(at + 8 * i);
                    dst[dstOff + i * dstStride] = rounding == null ? d : rounding.apply((float) d);
                }
            }
            default -> throw new IllegalStateException("not decodable: " + info.dtype());
        }
    }

    /**
     * Elements [first, first + count) as float32 into dst[dstOff...]: exact for BF16/F16/F32 storage, F64 rounded to
     * nearest (what a framework loading the weights in fp32 does).
     */
    public void decodeFloats(long first, int count, float[] dst, int dstOff) {
        if (closed) throw new IllegalStateException("tensor " + info.name() + " already unmapped");
        if (first < 0 || count < 0 || first + count > info.elementCount())
            throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") outside tensor " + info.name());
        if (quantized != null) {
            double[] d = new double[count];
            quantized.decode(first, count, d, 0, 1, null);
            for (int i = 0; i < count; i++) dst[dstOff + i] = (float) d[i];
            return;
        }
        // In runs that fit one chunk's overlap, so a run never leaves the chunk it starts in.
        int run = (int) (OVERLAP / width);
        for (int done = 0; done < count; done += run) {
            int n = Math.min(run, count - done);
            long byteStart = (first + done) * width;
            ByteBuffer buf = chunks[(int) (byteStart / CHUNK)];
            decodeFloats(info.dtype(), buf, (int) (byteStart % CHUNK), n, dst, dstOff + done);
        }
    }

    /** n elements of {@code dtype} at byte {@code at} of {@code buf} (little-endian) as float32 into dst[o...]. */
    static void decodeFloats(DType dtype, ByteBuffer buf, int at, int n, float[] dst, int o) {
        switch (dtype) {
            case BF16 -> {
                for (int i = 0; i < n; i++) dst[o + i] = Float.intBitsToFloat((buf.getShort(at + 2 * i) & 0xffff) << 16);
            }
            case F16 -> {
                for (int i = 0; i < n; i++) dst[o + i] = HalfBits.toFloat(buf.getShort(at + 2 * i) & 0xffff);
            }
            case F32 -> {
                for (int i = 0; i < n; i++) dst[o + i] = buf.getFloat(at + 4 * i);
            }
            case F64 -> {
                for (int i = 0; i < n; i++) dst[o + i] = (float) buf.getDouble(at + 8 * i);
            }
            default -> throw new IllegalStateException("not decodable: " + dtype);
        }
    }

    /** Unmaps now. The buffers must not be used afterwards; this object refuses to. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (quantized != null) {
            quantized.close();
            return;
        }
        for (int i = 0; i < chunks.length; i++) {
            Unmapper.unmap(chunks[i]);
            chunks[i] = null;
        }
    }

    /**
     * Java 17 has no public unmap: sun.misc.Unsafe.invokeCleaner (module jdk.unsupported, open to every class path
     * program) frees a mapping at once. Where it is missing the mapping is freed when the buffer is collected.
     */
    private static final class Unmapper {
        private static final Object UNSAFE;
        private static final Method INVOKE_CLEANER;

        static {
            Object u = null;
            Method m = null;
            try {
                Class<?> c = Class.forName("sun.misc.Unsafe");
                Field f = c.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                u = f.get(null);
                m = c.getMethod("invokeCleaner", ByteBuffer.class);
            } catch (ReflectiveOperationException | RuntimeException e) {
                u = null;
                m = null;
            }
            UNSAFE = u;
            INVOKE_CLEANER = m;
        }

        static void unmap(MappedByteBuffer b) {
            if (b == null || INVOKE_CLEANER == null) return;
            try {
                INVOKE_CLEANER.invoke(UNSAFE, b);
            } catch (ReflectiveOperationException | RuntimeException ignored) {
                // left to the garbage collector
            }
        }
    }
}
