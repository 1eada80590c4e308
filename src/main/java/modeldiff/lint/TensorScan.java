package modeldiff.lint;

import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.TensorInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Streaming reads of tensor bytes for lint: at most {@link LintOptions#chunkBytes()} are read per task into a reused
 * buffer, one task per thread at a time, so memory stays bounded whatever the model size. Values are tested on their bit patterns (a NaN is a NaN
 * in every float format without decoding), and row norms are accumulated in float64 straight from the mapped bytes:
 * no float64 copy of a tensor is ever made. Files are opened read-only.
 */
final class TensorScan {
    private TensorScan() {
    }

    /** NaN / Inf counts of one tensor, and the flat index of the first non-finite element (-1 when none). */
    record Nonfinite(String tensor, long nan, long inf, long first) {
        long total() {
            return nan + inf;
        }
    }

    /** Row statistics of a [rows, cols] matrix, optionally compared row by row with another of the same shape. */
    record MatrixStats(String tensor, int rows, int cols, double[] rowNorms, long nan, long inf, long firstNonfinite,
                       String comparedWith, int differingRows, List<Integer> firstDifferingRows, double maxAbsDiff) {
    }

    /** Float formats whose bit patterns we can test for NaN / Inf (ints and bools cannot hold either). */
    static boolean scannable(DType d) {
        return switch (d) {
            case F64, F32, F16, BF16, F8_E4M3, F8_E5M2 -> true;
            default -> false;
        };
    }

    // ---------------------------------------------------------------- non-finite scan of whole tensors

    static Map<String, Nonfinite> nonfinite(Collection<TensorInfo> tensors, LintOptions o) {
        record Task(TensorInfo t, long firstElem, long elems) {
        }
        List<Task> tasks = new ArrayList<>();
        for (TensorInfo t : tensors) {
            // dequantized views have no stored float bytes to scan: WeightRules counts their NaN codes in the stored bytes
            if (!scannable(t.dtype()) || t.byteLength() == 0 || t.quantized() != null) continue;
            long per = Math.max(1, o.chunkBytes() / t.dtype().bytes);
            for (long e = 0; e < t.elementCount(); e += per) tasks.add(new Task(t, e, Math.min(per, t.elementCount() - e)));
        }
        Map<String, long[]> acc = new LinkedHashMap<>();
        try (Channels ch = new Channels()) {
            List<long[]> results = parallel(o.threads(), tasks, task -> {
                ByteBuffer b = ch.read(task.t, task.firstElem * task.t.dtype().bytes, task.elems * task.t.dtype().bytes, 0);
                long[] r = {0, 0, -1};
                countNonfinite(b, (int) task.elems, task.t.dtype(), r);
                if (r[2] >= 0) r[2] += task.firstElem;
                return r;
            });
            for (int i = 0; i < tasks.size(); i++) {
                long[] r = results.get(i);
                long[] a = acc.computeIfAbsent(tasks.get(i).t.name(), k -> new long[]{0, 0, -1});
                a[0] += r[0];
                a[1] += r[1];
                if (r[2] >= 0 && (a[2] < 0 || r[2] < a[2])) a[2] = r[2];
            }
        }
        Map<String, Nonfinite> out = new LinkedHashMap<>();
        acc.forEach((name, a) -> out.put(name, new Nonfinite(name, a[0], a[1], a[2])));
        return out;
    }

    /** Adds NaN count to r[0], Inf count to r[1]; sets r[2] to the first non-finite element's index in this buffer. */
    static void countNonfinite(ByteBuffer b, int n, DType d, long[] r) {
        long nan = 0, inf = 0;
        int first = -1;
        switch (d) {
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    int h = b.getShort(i << 1);
                    if ((h & 0x7f80) == 0x7f80) {
                        if ((h & 0x7f) != 0) nan++; else inf++;
                        if (first < 0) first = i;
                    }
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    int h = b.getShort(i << 1);
                    if ((h & 0x7c00) == 0x7c00) {
                        if ((h & 0x3ff) != 0) nan++; else inf++;
                        if (first < 0) first = i;
                    }
                }
            }
            case F32 -> {
                for (int i = 0; i < n; i++) {
                    int x = b.getInt(i << 2);
                    if ((x & 0x7f800000) == 0x7f800000) {
                        if ((x & 0x7fffff) != 0) nan++; else inf++;
                        if (first < 0) first = i;
                    }
                }
            }
            case F64 -> {
                for (int i = 0; i < n; i++) {
                    long x = b.getLong(i << 3);
                    if ((x & 0x7ff0000000000000L) == 0x7ff0000000000000L) {
                        if ((x & 0xfffffffffffffL) != 0) nan++; else inf++;
                        if (first < 0) first = i;
                    }
                }
            }
            case F8_E4M3 -> { // float8_e4m3fn: no infinities; S.1111.111 is NaN
                for (int i = 0; i < n; i++) {
                    if ((b.get(i) & 0x7f) == 0x7f) {
                        nan++;
                        if (first < 0) first = i;
                    }
                }
            }
            case F8_E5M2 -> {
                for (int i = 0; i < n; i++) {
                    int x = b.get(i);
                    if ((x & 0x7c) == 0x7c) {
                        if ((x & 0x3) != 0) nan++; else inf++;
                        if (first < 0) first = i;
                    }
                }
            }
            default -> {
            }
        }
        r[0] += nan;
        r[1] += inf;
        if (first >= 0) r[2] = first;
    }

    // ---------------------------------------------------------------- row norms of embedding / lm_head

    static MatrixStats matrix(TensorInfo t, TensorInfo compare, LintOptions o) {
        if (t.rank() != 2 || t.shape()[0] > Integer.MAX_VALUE || t.shape()[1] > Integer.MAX_VALUE / 8)
            throw new IllegalArgumentException(t.name() + ": not a [rows, cols] matrix");
        int rows = (int) t.shape()[0], cols = (int) t.shape()[1];
        if (compare != null && (compare.rank() != 2 || compare.shape()[0] != rows || compare.shape()[1] != cols
                || !TensorScan.scannable(compare.dtype())))
            compare = null;
        final TensorInfo other = compare;
        long rowBytes = (long) cols * t.dtype().bytes;
        int rowsPer = (int) Math.max(1, Math.min(rows, o.chunkBytes() / Math.max(1, rowBytes)));
        List<int[]> tasks = new ArrayList<>();
        for (int r = 0; r < rows; r += rowsPer) tasks.add(new int[]{r, Math.min(rows, r + rowsPer)});
        double[] norms = new double[rows];
        record Part(long nan, long inf, long first, int differing, List<Integer> firstDiff, double maxDiff) {
        }
        List<Part> parts;
        try (Channels ch = new Channels()) {
            parts = parallel(o.threads(), tasks, range -> {
                int r0 = range[0], n = range[1] - range[0];
                ByteBuffer b = ch.read(t, r0 * rowBytes, n * rowBytes, 0);
                ByteBuffer c = other == null ? null : ch.read(other, (long) r0 * cols * other.dtype().bytes, (long) n * cols * other.dtype().bytes, 1);
                long[] nf = {0, 0, -1};
                int differing = 0;
                List<Integer> firstDiff = new ArrayList<>();
                double maxDiff = 0;
                double[] rowA = other == null ? null : new double[cols], rowB = other == null ? null : new double[cols];
                for (int i = 0; i < n; i++) {
                    long[] rowNf = {0, 0, -1};
                    double ss = rowSumSq(b, (int) (i * rowBytes), cols, t.dtype(), rowNf);
                    if (rowNf[0] + rowNf[1] > 0) {
                        norms[r0 + i] = Double.NaN;
                        if (nf[2] < 0) nf[2] = (long) (r0 + i) * cols + rowNf[2];
                        nf[0] += rowNf[0];
                        nf[1] += rowNf[1];
                    } else {
                        norms[r0 + i] = Math.sqrt(ss);
                    }
                    if (other != null) {
                        boolean same;
                        if (other.dtype() == t.dtype()) {
                            int off = (int) (i * rowBytes);
                            same = b.slice(off, (int) rowBytes).equals(c.slice(off, (int) rowBytes));
                        } else {
                            same = false;
                        }
                        if (!same) {
                            decodeRow(b, (int) (i * rowBytes), cols, t.dtype(), rowA);
                            decodeRow(c, i * cols * other.dtype().bytes, cols, other.dtype(), rowB);
                            double d = 0;
                            boolean differs = false;
                            for (int j = 0; j < cols; j++) {
                                if (Double.compare(rowA[j], rowB[j]) != 0 && rowA[j] != rowB[j]) {
                                    differs = true;
                                    double x = Math.abs(rowA[j] - rowB[j]);
                                    if (!(x <= d)) d = x; // NaN propagates
                                }
                            }
                            if (differs) {
                                differing++;
                                if (firstDiff.size() < o.maxListed()) firstDiff.add(r0 + i);
                                if (!(d <= maxDiff)) maxDiff = d;
                            }
                        }
                    }
                }
                return new Part(nf[0], nf[1], nf[2], differing, firstDiff, maxDiff);
            });
        }
        long nan = 0, inf = 0, first = -1;
        int differing = 0;
        double maxDiff = 0;
        List<Integer> firstDiff = new ArrayList<>();
        for (Part p : parts) { // tasks are in row order, so "first" lists stay sorted
            nan += p.nan;
            inf += p.inf;
            if (first < 0) first = p.first;
            differing += p.differing;
            for (int r : p.firstDiff) if (firstDiff.size() < o.maxListed()) firstDiff.add(r);
            if (!(p.maxDiff <= maxDiff)) maxDiff = p.maxDiff;
        }
        return new MatrixStats(t.name(), rows, cols, norms, nan, inf, first, other == null ? null : other.name(),
                differing, firstDiff, maxDiff);
    }

    /** Sum of squares of the finite elements of one row; counts NaN into nf[0], Inf into nf[1], first index nf[2]. */
    private static double rowSumSq(ByteBuffer b, int off, int cols, DType d, long[] nf) {
        double s = 0;
        switch (d) {
            case BF16 -> {
                for (int i = 0; i < cols; i++) {
                    int h = b.getShort(off + (i << 1)) & 0xffff;
                    if ((h & 0x7f80) == 0x7f80) {
                        nonfinite(nf, (h & 0x7f) != 0, i);
                        continue;
                    }
                    double v = Float.intBitsToFloat(h << 16);
                    s += v * v;
                }
            }
            case F16 -> {
                for (int i = 0; i < cols; i++) {
                    int h = b.getShort(off + (i << 1)) & 0xffff;
                    if ((h & 0x7c00) == 0x7c00) {
                        nonfinite(nf, (h & 0x3ff) != 0, i);
                        continue;
                    }
                    double v = half(h);
                    s += v * v;
                }
            }
            case F32 -> {
                for (int i = 0; i < cols; i++) {
                    float f = b.getFloat(off + (i << 2));
                    if (!Float.isFinite(f)) {
                        nonfinite(nf, Float.isNaN(f), i);
                        continue;
                    }
                    double v = f;
                    s += v * v;
                }
            }
            case F64 -> {
                for (int i = 0; i < cols; i++) {
                    double v = b.getDouble(off + (i << 3));
                    if (!Double.isFinite(v)) {
                        nonfinite(nf, Double.isNaN(v), i);
                        continue;
                    }
                    s += v * v;
                }
            }
            default -> {
                double[] row = new double[cols];
                decodeRow(b, off, cols, d, row);
                for (int i = 0; i < cols; i++) {
                    if (!Double.isFinite(row[i])) {
                        nonfinite(nf, Double.isNaN(row[i]), i);
                        continue;
                    }
                    s += row[i] * row[i];
                }
            }
        }
        return s;
    }

    private static void nonfinite(long[] nf, boolean nan, int i) {
        if (nan) nf[0]++; else nf[1]++;
        if (nf[2] < 0) nf[2] = i;
    }

    static void decodeRow(ByteBuffer b, int off, int cols, DType d, double[] out) {
        for (int i = 0; i < cols; i++) {
            out[i] = switch (d) {
                case BF16 -> Float.intBitsToFloat((b.getShort(off + 2 * i) & 0xffff) << 16);
                case F16 -> half(b.getShort(off + 2 * i) & 0xffff);
                case F32 -> b.getFloat(off + 4 * i);
                case F64 -> b.getDouble(off + 8 * i);
                case F8_E4M3 -> e4m3(b.get(off + i) & 0xff);
                case F8_E5M2 -> half((b.get(off + i) & 0xff) << 8); // e5m2 is the top byte of a binary16
                default -> throw new IllegalArgumentException("cannot decode " + d);
            };
        }
    }

    /** IEEE binary16 bits to a double, exactly. */
    static double half(int h) {
        int exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
        double mag;
        if (exp == 0) mag = mant * 0x1p-24;
        else if (exp == 31) mag = mant == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        else mag = Math.scalb(1.0 + mant / 1024.0, exp - 15);
        return (h & 0x8000) != 0 ? -mag : mag;
    }

    /** float8_e4m3fn bits to a double: bias 7, no infinities, S.1111.111 NaN. */
    static double e4m3(int x) {
        int exp = (x >>> 3) & 0xf, mant = x & 0x7;
        double mag;
        if (exp == 15 && mant == 7) mag = Double.NaN;
        else if (exp == 0) mag = mant * 0x1p-9;
        else mag = Math.scalb(1.0 + mant / 8.0, exp - 7);
        return (x & 0x80) != 0 ? -mag : mag;
    }

    // ---------------------------------------------------------------- plumbing

    /**
     * One read-only channel per file, shared by the tasks (positional reads are thread-safe), and per worker thread
     * two reusable direct buffers (a tensor slice, and the slice it is compared with). Reading into them rather than
     * memory-mapping keeps the process's resident memory at about threads x 2 x chunk, whatever the model size:
     * mapped chunks stay resident until the garbage collector happens to unmap them.
     */
    private static final class Channels implements AutoCloseable {
        private final Map<Path, FileChannel> open = new HashMap<>();
        private final ThreadLocal<ByteBuffer[]> buffers = ThreadLocal.withInitial(() -> new ByteBuffer[2]);

        synchronized FileChannel get(Path p) throws IOException {
            FileChannel ch = open.get(p);
            if (ch == null) {
                ch = FileChannel.open(p, StandardOpenOption.READ);
                open.put(p, ch);
            }
            return ch;
        }

        /** Bytes [byteOffset, byteOffset + bytes) of a tensor's data, little-endian, in this thread's buffer {@code slot}. */
        ByteBuffer read(TensorInfo t, long byteOffset, long bytes, int slot) {
            if (bytes > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("chunk too large: " + bytes);
            ByteBuffer[] mine = buffers.get();
            ByteBuffer b = mine[slot];
            if (b == null || b.capacity() < bytes) {
                b = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
                mine[slot] = b;
            }
            b.clear().limit((int) bytes);
            try {
                FileChannel ch = get(t.file());
                long pos = t.fileOffset() + byteOffset;
                while (b.hasRemaining()) {
                    int n = ch.read(b, pos);
                    if (n < 0) throw new IOException("unexpected end of file");
                    pos += n;
                }
            } catch (IOException e) {
                throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "cannot read: " + e.getMessage());
            }
            return b.flip();
        }

        @Override
        public synchronized void close() {
            for (FileChannel ch : open.values()) {
                try {
                    ch.close();
                } catch (IOException ignored) {
                    // read-only; nothing to lose
                }
            }
        }
    }

    interface Work<T, R> {
        R run(T t) throws Exception;
    }

    /** Runs the tasks on up to {@code threads} threads; results in task order. */
    static <T, R> List<R> parallel(int threads, List<T> tasks, Work<T, R> work) {
        List<R> out = new ArrayList<>(tasks.size());
        if (threads <= 1 || tasks.size() <= 1) {
            for (T t : tasks) {
                try {
                    out.add(work.run(t));
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
            return out;
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, tasks.size()), r -> {
            Thread th = new Thread(r, "lint-scan");
            th.setDaemon(true);
            return th;
        });
        try {
            List<Future<R>> fs = new ArrayList<>(tasks.size());
            for (T t : tasks) fs.add(pool.submit(() -> work.run(t)));
            for (Future<R> f : fs) out.add(f.get());
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new IllegalStateException(e.getCause());
        } finally {
            pool.shutdownNow();
        }
    }
}
