package modeldiff.model;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file: an 8-byte little-endian header length, a JSON header, then raw little-endian data.
 * Only the header is read on open; tensor bytes are memory-mapped when asked for, so a model larger than RAM can be
 * walked one tensor at a time. Every header field is validated against the file size before anything is mapped.
 * Format: https://github.com/huggingface/safetensors#format
 */
public final class SafeTensorsFile {
    /** The reference implementation refuses headers over 100 MB; so do we (a hostile length must not allocate). */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    /**
     * Shared by every JSON reader of untrusted files (headers, config.json, shard indexes): duplicate keys and
     * anything after the top-level value are errors, and Jackson's default stream limits (nesting depth, number and
     * string length) hold.
     */
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final Path path;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafeTensorsFile(Path path, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public Path path() {
        return path;
    }

    /** Tensors in header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public static SafeTensorsFile open(Path path) {
        if (!Files.exists(path)) throw BadInputException.at(path, "file", "no such file");
        // Not a FIFO or device: opening one would block or read forever.
        if (!Files.isRegularFile(path)) throw BadInputException.at(path, "file", "not a regular file");
        long fileSize;
        byte[] headerBytes;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            fileSize = ch.size();
            if (fileSize < 8) throw BadInputException.at(path, "header", "file is " + fileSize + " bytes, too short for safetensors");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || headerLen > fileSize - 8) {
                String foreign = FileFormats.refusal(path, lenBuf.array());
                if (foreign != null) throw new BadInputException(foreign);
                throw BadInputException.at(path, "header", "declared header length " + Long.toUnsignedString(headerLen)
                        + " is impossible for a file of " + fileSize + " bytes");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            readFully(ch, hb, 8);
            headerBytes = hb.array();
        } catch (IOException e) {
            throw BadInputException.at(path, "file", "cannot read: " + e.getMessage());
        }
        return parseHeader(path, headerBytes, fileSize);
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, position);
            if (n < 0) throw new IOException("unexpected end of file");
            position += n;
        }
    }

    /**
     * Parses a whole safetensors file held in memory (the fuzz tests' entry point; {@link #open} reads only the header
     * of a file on disk). {@code path} only names the file in messages.
     */
    public static SafeTensorsFile parse(Path path, byte[] file) {
        if (file.length < 8) throw BadInputException.at(path, "header", "file is " + file.length + " bytes, too short for safetensors");
        long headerLen = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || headerLen > file.length - 8L) {
            String foreign = FileFormats.refusal(path, java.util.Arrays.copyOf(file, 8));
            if (foreign != null) throw new BadInputException(foreign);
            throw BadInputException.at(path, "header", "declared header length " + Long.toUnsignedString(headerLen)
                    + " is impossible for a file of " + file.length + " bytes");
        }
        return parseHeader(path, java.util.Arrays.copyOfRange(file, 8, 8 + (int) headerLen), file.length);
    }

    static SafeTensorsFile parseHeader(Path path, byte[] headerBytes, long fileSize) {
        long dataStart = 8L + headerBytes.length;
        long dataSize = fileSize - dataStart;
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw BadInputException.at(path, "header", "not UTF-8 text");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text.stripTrailing());
        } catch (JsonProcessingException e) {
            String m = String.valueOf(e.getOriginalMessage());
            if (m.startsWith("Duplicate field"))
                throw BadInputException.at(path, "header", "duplicate entry: " + m.substring("Duplicate field".length()).trim());
            throw BadInputException.at(path, "header", "not valid JSON: " + m);
        }
        if (root == null || !root.isObject()) throw BadInputException.at(path, "header", "must be a JSON object");

        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode node = e.getValue();
            if (name.equals("__metadata__")) {
                if (!node.isObject()) throw BadInputException.at(path, "__metadata__", "must be an object of strings");
                node.fields().forEachRemaining(m -> {
                    if (!m.getValue().isTextual())
                        throw BadInputException.at(path, "__metadata__." + m.getKey(), "value must be a string");
                    metadata.put(m.getKey(), m.getValue().asText());
                });
                continue;
            }
            tensors.put(name, parseEntry(path, name, node, dataStart, dataSize));
        }
        checkNoOverlap(path, tensors);
        return new SafeTensorsFile(path, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode node, long dataStart, long dataSize) {
        String what = "tensor '" + abbreviate(name, 200) + "'";
        if (!node.isObject()) throw BadInputException.at(path, what, "entry must be an object");
        JsonNode dt = node.get("dtype"), sh = node.get("shape"), off = node.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw BadInputException.at(path, what, "missing dtype");
        DType dtype = DType.parse(dt.asText());
        if (dtype == null) throw BadInputException.at(path, what, "unknown dtype '" + abbreviate(dt.asText()) + "'; known: "
                + java.util.Arrays.toString(DType.values()));
        if (sh == null || !sh.isArray()) throw BadInputException.at(path, what, "missing shape");
        long[] shape = new long[sh.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0)
                throw BadInputException.at(path, what, "shape entry " + abbreviate(d) + " is not a non-negative integer");
            shape[i] = d.asLong();
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException ex) {
                throw BadInputException.at(path, what, "shape " + abbreviate(sh) + " overflows");
            }
        }
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()
                || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber())
            throw BadInputException.at(path, what, "data_offsets must be [begin, end]");
        long begin = off.get(0).asLong(), end = off.get(1).asLong();
        if (begin < 0 || end < begin) throw BadInputException.at(path, what, "data_offsets [" + begin + ", " + end + "] are reversed or negative");
        if (end > dataSize) throw BadInputException.at(path, what, "data_offsets end " + end + " is past the data section (" + dataSize + " bytes)");
        long expected;
        try {
            expected = Math.multiplyExact(elements, dtype.bytes);
        } catch (ArithmeticException ex) {
            throw BadInputException.at(path, what, "shape " + abbreviate(sh) + " overflows");
        }
        if (end - begin != expected)
            throw BadInputException.at(path, what, "shape " + abbreviate(sh) + " of " + dtype + " needs " + expected + " bytes but data_offsets span " + (end - begin));
        return new TensorInfo(name, path, dtype, shape, dataStart + begin, end - begin);
    }

    /** Two non-empty byte ranges may not share a byte (compared with the furthest-reaching range seen so far). */
    private static void checkNoOverlap(Path path, Map<String, TensorInfo> tensors) {
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo t : tensors.values()) if (t.byteLength() > 0) sorted.add(t);
        sorted.sort(Comparator.comparingLong(TensorInfo::fileOffset));
        TensorInfo reach = null;
        for (TensorInfo b : sorted) {
            if (reach != null && b.fileOffset() < reach.fileOffset() + reach.byteLength())
                throw BadInputException.at(path, "tensor '" + b.name() + "'", "data overlaps tensor '" + reach.name() + "'");
            if (reach == null || b.fileOffset() + b.byteLength() > reach.fileOffset() + reach.byteLength()) reach = b;
        }
    }

    static String abbreviate(Object o) {
        return abbreviate(o, 80);
    }

    static String abbreviate(Object o, int max) {
        String s = String.valueOf(o);
        return s.length() > max ? s.substring(0, max - 3) + "..." : s;
    }
}
