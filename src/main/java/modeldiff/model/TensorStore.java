package modeldiff.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * All tensors of a model folder: {@code model.safetensors}, or the shards named by
 * {@code model.safetensors.index.json}. Opening reads headers only; {@link #readDoubles} maps and widens one tensor
 * (or a row range of it) when a pass asks, so memory stays bounded by what a pass holds at once.
 * Files are opened read-only: a model folder is never modified.
 */
public final class TensorStore {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    private final Map<String, TensorInfo> tensors;
    private final Set<Path> files;
    /** The tensors as the files store them (quantized data and scales separate); {@link #tensors} is HF's view. */
    private final Map<String, TensorInfo> stored;
    private final Map<String, String> quantProblems;
    private final QuantizationConfig quantization;

    private TensorStore(Path dir, Map<String, TensorInfo> stored, Set<Path> files, QuantizationConfig quantization) {
        QuantizedView view = QuantizedView.of(stored, quantization);
        this.dir = dir;
        this.stored = stored;
        this.tensors = view.tensors();
        this.quantProblems = view.problems();
        this.quantization = quantization;
        this.files = files;
    }

    public static TensorStore open(Path dir) {
        Path index = dir.resolve(INDEX_FILE);
        Path single = dir.resolve(SINGLE_FILE);
        Map<String, TensorInfo> all = new LinkedHashMap<>();
        Set<Path> files = new LinkedHashSet<>();
        if (Files.exists(index)) {
            if (!Files.isRegularFile(index)) throw BadInputException.at(index, "file", "not a regular file");
            Map<String, String> weightMap = readIndex(dir, index);
            Map<String, SafeTensorsFile> shards = new LinkedHashMap<>();
            for (String shardName : new LinkedHashSet<>(weightMap.values())) {
                Path shard = resolveInside(dir, index, shardName);
                shards.put(shardName, SafeTensorsFile.open(shard));
                files.add(shard);
            }
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                TensorInfo info = shards.get(e.getValue()).tensors().get(e.getKey());
                if (info == null)
                    throw BadInputException.at(index, "weight_map['" + SafeTensorsFile.abbreviate(e.getKey(), 200) + "']",
                            "shard " + e.getValue() + " has no such tensor");
                all.put(e.getKey(), info);
            }
            // Tensors present in a shard but absent from the index are ignored by HF too; keep them visible to lint.
            for (SafeTensorsFile f : shards.values())
                f.tensors().forEach(all::putIfAbsent);
        } else if (Files.exists(single)) {
            SafeTensorsFile f = SafeTensorsFile.open(single);
            all.putAll(f.tensors());
            files.add(single);
        } else {
            throw BadInputException.at(dir, "weights", "no " + SINGLE_FILE + " or " + INDEX_FILE + " in the model folder");
        }
        return new TensorStore(dir, Collections.unmodifiableMap(all), Collections.unmodifiableSet(files), QuantizationConfig.read(dir));
    }

    private static Map<String, String> readIndex(Path dir, Path index) {
        JsonNode root;
        try {
            long size = Files.size(index);
            if (size > ModelConfig.MAX_CONFIG_BYTES)
                throw BadInputException.at(index, "file", size + " bytes; an index over " + ModelConfig.MAX_CONFIG_BYTES + " bytes is refused");
            root = SafeTensorsFile.JSON.readTree(Files.readAllBytes(index));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw BadInputException.at(index, "file", "not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw BadInputException.at(index, "file", "cannot read: " + e.getMessage());
        }
        JsonNode map = root == null || !root.isObject() ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw BadInputException.at(index, "weight_map", "missing or not an object");
        Map<String, String> out = new LinkedHashMap<>();
        map.fields().forEachRemaining(e -> {
            if (!e.getValue().isTextual())
                throw BadInputException.at(index, "weight_map['" + SafeTensorsFile.abbreviate(e.getKey(), 200) + "']", "shard name must be a string");
            out.put(e.getKey(), e.getValue().asText());
        });
        return out;
    }

    /** A shard name must name a regular file inside the model folder: no "..", no absolute path, no link out. */
    private static Path resolveInside(Path dir, Path index, String shardName) {
        String what = "shard '" + SafeTensorsFile.abbreviate(shardName, 200) + "'";
        if (shardName.isEmpty() || shardName.contains("/") || shardName.contains("\\") || shardName.equals("..") || shardName.equals(".")
                || shardName.chars().anyMatch(c -> c < 0x20 || c == 0x7f))
            throw BadInputException.at(index, what, "shard names must be plain file names inside the model folder");
        Path p;
        try {
            p = dir.resolve(shardName);
        } catch (java.nio.file.InvalidPathException e) {
            throw BadInputException.at(index, what, "not a valid file name");
        }
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) throw BadInputException.at(index, what, "file is missing");
        try {
            Path real = p.toRealPath();
            if (!real.startsWith(dir.toRealPath()))
                throw BadInputException.at(index, what, "resolves outside the model folder");
        } catch (IOException e) {
            throw BadInputException.at(index, what, "cannot resolve: " + e.getMessage());
        }
        if (!Files.isRegularFile(p)) throw BadInputException.at(index, what, "not a regular file");
        return p;
    }

    public Path dir() {
        return dir;
    }

    /** Every tensor by the name HF gives it after loading: quantized weights appear once, dequantized (see {@link Quantized}). */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** Every tensor as stored in the files: MXFP4 blocks and scales, fp8 values and their scale_inv separately. */
    public Map<String, TensorInfo> storedTensors() {
        return stored;
    }

    /**
     * Quantized weights that cannot be dequantized, by the weight's name (or an orphan scale's): why, naming the scale
     * tensor. Such a weight stays in {@link #tensors} as stored; {@link Model#open} refuses it when the family reads it.
     */
    public Map<String, String> quantProblems() {
        return quantProblems;
    }

    public QuantizationConfig quantization() {
        return quantization;
    }

    public Set<Path> files() {
        return files;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw BadInputException.at(dir, "tensor '" + name + "'", "missing from the model's safetensors");
        return t;
    }

    /** The whole tensor widened exactly to float64, row-major (dequantized where stored quantized). */
    public double[] readDoubles(String name) {
        TensorInfo t = info(name);
        return readDoubles(t, 0, t.elementCount());
    }

    /**
     * Elements [first, first+count) of a tensor, widened exactly to float64 (every F16/BF16/F32 value is a double).
     */
    public static double[] readDoubles(TensorInfo t, long first, long count) {
        if (t.quantized() != null) {
            if (first < 0 || count < 0 || first + count > t.elementCount())
                throw new IllegalArgumentException("range outside tensor " + t.name());
            return Quantized.read(t, first, count);
        }
        if (!t.dtype().decodable)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "dtype " + t.dtype() + " cannot hold weights");
        if (first < 0 || count < 0 || first + count > t.elementCount())
            throw new IllegalArgumentException("range outside tensor " + t.name());
        if (count > Integer.MAX_VALUE - 8)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "slice of " + count + " elements is too large for one array");
        double[] out = new double[(int) count];
        int width = t.dtype().bytes;
        // Map in chunks below 2 GiB: a MappedByteBuffer is int-indexed.
        final long chunkElems = (1L << 30) / width;
        try (FileChannel ch = FileChannel.open(t.file(), StandardOpenOption.READ)) {
            for (long done = 0; done < count; ) {
                long n = Math.min(chunkElems, count - done);
                MappedByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, t.fileOffset() + (first + done) * width, n * width);
                buf.order(ByteOrder.LITTLE_ENDIAN);
                decode(t.dtype(), buf, out, (int) done, (int) n);
                done += n;
            }
        } catch (IOException e) {
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "cannot read: " + e.getMessage());
        }
        return out;
    }

    /**
     * Elements [first, first+count) as float32: exact for BF16/F16/F32, F64 rounded to nearest, as
     * {@code (float)} of {@link #readDoubles} would give, at half the memory and without the float64 detour.
     */
    public static float[] readFloats(TensorInfo t, long first, long count) {
        if (t.quantized() != null) {
            if (first < 0 || count < 0 || first + count > t.elementCount())
                throw new IllegalArgumentException("range outside tensor " + t.name());
            return Quantized.readFloats(t, first, count);
        }
        if (!t.dtype().decodable)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "dtype " + t.dtype() + " cannot hold weights");
        if (first < 0 || count < 0 || first + count > t.elementCount())
            throw new IllegalArgumentException("range outside tensor " + t.name());
        if (count > Integer.MAX_VALUE - 8)
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "slice of " + count + " elements is too large for one array");
        float[] out = new float[(int) count];
        int width = t.dtype().bytes;
        // Plain positional reads in 1 MiB pieces: no mapping to set up and tear down per tensor, and nothing of the
        // file stays in this process's resident set (the page cache keeps it for the next run).
        ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(t.file(), StandardOpenOption.READ)) {
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(count - done, buf.capacity() / width);
                long pos = t.fileOffset() + (first + done) * width;
                buf.clear().limit(n * width);
                while (buf.hasRemaining())
                    if (ch.read(buf, pos + buf.position()) < 0)
                        throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "file ends inside the tensor's data");
                MappedTensor.decodeFloats(t.dtype(), buf, 0, n, out, (int) done);
                done += n;
            }
        } catch (IOException e) {
            throw BadInputException.at(t.file(), "tensor '" + t.name() + "'", "cannot read: " + e.getMessage());
        }
        return out;
    }

    private static void decode(DType dtype, MappedByteBuffer buf, double[] out, int at, int n) {
        switch (dtype) {
            case F64 -> {
                for (int i = 0; i < n; i++) out[at + i] = buf.getDouble(i * 8);
            }
            case F32 -> {
                for (int i = 0; i < n; i++) out[at + i] = buf.getFloat(i * 4);
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) out[at + i] = Float.intBitsToFloat((buf.getShort(i * 2) & 0xffff) << 16);
            }
            case F16 -> {
                for (int i = 0; i < n; i++) out[at + i] = HalfBits.toFloat(buf.getShort(i * 2) & 0xffff);
            }
            default -> throw new IllegalStateException("not decodable: " + dtype);
        }
    }
}
