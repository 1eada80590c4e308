package modeldiff.trace;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.BadInputException;
import modeldiff.model.FuzzInvariants;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The trace reader on hostile files. Invariant: reads or throws {@link BadInputException}, one line.
 * {@link #traceFile} takes the file's bytes as they come; {@link #traceMetadata} writes a well-formed safetensors
 * file whose trace metadata and probe tensors the fuzzer chooses, to get past the container format.
 */
class TraceFuzzTest {
    private static Path dir;

    static synchronized Path file() {
        try {
            if (dir == null) {
                Path shm = Path.of("/dev/shm");
                dir = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, "modeldiff-fuzz")
                        : Files.createTempDirectory("modeldiff-fuzz");
            }
            return dir.resolve("trace.safetensors");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @AfterAll
    static void cleanUp() throws IOException {
        if (dir != null) {
            Files.deleteIfExists(dir.resolve("trace.safetensors"));
            Files.deleteIfExists(dir);
        }
    }

    @FuzzTest
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void traceFile(byte[] bytes) throws IOException {
        Path f = file();
        Files.write(f, bytes);
        check(f);
    }

    @FuzzTest
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void traceMetadata(FuzzedDataProvider d) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        ObjectNode meta = header.putObject("__metadata__");
        String[] keys = {"format", "producer", "dtype", "device", "tokens", "position_offset", "probes", "planted"};
        for (String k : keys) {
            int how = d.consumeInt(0, 9);
            if (how == 0) continue; // absent
            meta.put(k, switch (k) {
                case "format" -> how < 8 ? Trace.FORMAT : d.consumeString(20);
                case "tokens" -> how < 6 ? "[1, 2, 3]" : d.consumeString(40);
                case "position_offset" -> how < 6 ? Long.toString(d.consumeLong()) : d.consumeString(24);
                case "probes" -> how < 4 ? "[\"embed\", \"logits\"]" : how < 6 ? "[\"embed\", \"embed\"]" : d.consumeString(60);
                default -> d.consumeString(16);
            });
        }
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        int n = d.consumeInt(0, 4);
        for (int i = 0; i < n; i++) {
            String name = d.pickValue(new String[]{"embed", "logits", "layers.0", "x"});
            String dtype = d.pickValue(new String[]{"F32", "F64", "BF16", "I32", "F16", "BOOL"});
            int width = switch (dtype) {
                case "F64" -> 8;
                case "F32", "I32" -> 4;
                case "BF16", "F16" -> 2;
                default -> 1;
            };
            int rank = d.consumeInt(0, 3);
            long[] shape = new long[rank];
            long count = 1;
            for (int r = 0; r < rank; r++) {
                shape[r] = d.consumeInt(0, 5);
                count *= shape[r];
            }
            ObjectNode e = header.putObject(name);
            e.put("dtype", dtype);
            var sh = e.putArray("shape");
            for (long s : shape) sh.add(s);
            long begin = data.size();
            byte[] payload = d.consumeBytes((int) (count * width));
            data.write(payload);
            data.write(new byte[(int) (count * width) - payload.length]);
            var off = e.putArray("data_offsets");
            off.add(begin);
            off.add(d.consumeInt(0, 9) == 0 ? begin + d.consumeInt(-4, 40) : data.size());
        }
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        byte[] body = data.toByteArray();
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + body.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(body);
        Path f = file();
        Files.write(f, b.array());
        check(f);
    }

    static void check(Path f) {
        Trace t;
        try {
            t = TraceFiles.read(f);
        } catch (BadInputException e) {
            FuzzInvariants.oneLine(e);
            return;
        }
        if (t.tokens().length == 0) throw new AssertionError("a trace without tokens was accepted");
        for (Trace.Probe p : t.probes().values())
            if (p.rows() != t.tokens().length || p.cols() <= 0) throw new AssertionError("probe shape " + p.name());
    }
}
