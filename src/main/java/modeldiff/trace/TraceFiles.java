package modeldiff.trace;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.SafeTensorsFile;
import modeldiff.model.SafeTensorsWriter;
import modeldiff.model.TensorInfo;
import modeldiff.model.TensorStore;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * Reads and writes trace files: safetensors with one F32 or F64 [tokens, width] tensor per probe and
 * {@code __metadata__} naming the format, producer, dtype, device, tokens, position offset and probe order.
 * The format is documented in docs/trace-format.md; files from other tools that follow it load here.
 */
public final class TraceFiles {
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** Positions past 2^40 are refused: no model has such a context, and position arithmetic must not overflow. */
    public static final long MAX_POSITION = 1L << 40;
    /** A trace of more tokens than this is refused on reading (the CLI's --max-tokens is far lower by default). */
    public static final int MAX_TOKENS = 1 << 20;
    private static final Set<String> RESERVED = Set.of("format", "producer", "dtype", "device", "tokens", "position_offset", "probes");

    private TraceFiles() {
    }

    /** Writes atomically; {@code storage} is F64 (exact) or F32 (half the size, rounds float64 values). */
    public static void write(Trace trace, Path file, DType storage) {
        if (storage != DType.F64 && storage != DType.F32) throw new IllegalArgumentException("trace storage must be F32 or F64");
        SafeTensorsWriter w = new SafeTensorsWriter()
                .metadata("format", Trace.FORMAT)
                .metadata("producer", trace.producer())
                .metadata("dtype", trace.dtype())
                .metadata("device", trace.device());
        ArrayNode toks = JSON.createArrayNode();
        for (int t : trace.tokens()) toks.add(t);
        w.metadata("tokens", toks.toString()).metadata("position_offset", Long.toString(trace.positionOffset()));
        ArrayNode names = JSON.createArrayNode();
        trace.probeNames().forEach(names::add);
        w.metadata("probes", names.toString());
        trace.extra().forEach((k, v) -> {
            if (!RESERVED.contains(k)) w.metadata(k, v);
        });
        for (Trace.Probe p : trace.probes().values())
            w.add(p.name(), storage, new long[]{p.rows(), p.cols()}, p.data());
        w.write(file);
    }

    public static Trace read(Path file) {
        SafeTensorsFile st = SafeTensorsFile.open(file);
        Map<String, String> meta = st.metadata();
        String format = meta.get("format");
        if (!Trace.FORMAT.equals(format))
            throw BadInputException.at(file, "__metadata__.format", "expected '" + Trace.FORMAT + "', got " + (format == null ? "nothing" : "'" + format + "'"));
        int[] tokens = parseTokens(file, meta.get("tokens"));
        long offset;
        try {
            offset = Long.parseLong(required(file, meta, "position_offset").trim());
        } catch (NumberFormatException e) {
            throw BadInputException.at(file, "__metadata__.position_offset", "not an integer");
        }
        if (offset < 0) throw BadInputException.at(file, "__metadata__.position_offset", "negative");
        if (offset > MAX_POSITION) throw BadInputException.at(file, "__metadata__.position_offset", offset + " is past " + MAX_POSITION);
        Trace trace = new Trace(meta.getOrDefault("producer", "unknown"), required(file, meta, "dtype"),
                meta.getOrDefault("device", "unknown"), tokens, offset);
        meta.forEach((k, v) -> {
            if (!RESERVED.contains(k)) trace.putExtra(k, v);
        });
        for (String name : parseProbeNames(file, required(file, meta, "probes"))) {
            TensorInfo t = st.tensors().get(name);
            String what = "probe '" + name + "'";
            if (trace.has(name)) throw BadInputException.at(file, what, "listed twice in __metadata__.probes");
            if (t == null) throw BadInputException.at(file, what, "listed in __metadata__.probes but absent");
            if (t.dtype() != DType.F32 && t.dtype() != DType.F64)
                throw BadInputException.at(file, what, "dtype " + t.dtype() + "; traces hold F32 or F64");
            if (t.rank() != 2 || t.shape()[0] != tokens.length || t.shape()[1] > Integer.MAX_VALUE / Math.max(1, tokens.length))
                throw BadInputException.at(file, what, "shape " + t.shapeString() + " is not [" + tokens.length + " tokens, width]");
            if (t.shape()[1] == 0) throw BadInputException.at(file, what, "width 0; a probe holds at least one value per token");
            trace.put(name, (int) t.shape()[1], TensorStore.readDoubles(t, 0, t.elementCount()));
        }
        return trace;
    }

    private static String required(Path file, Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) throw BadInputException.at(file, "__metadata__." + key, "missing");
        return v;
    }

    private static int[] parseTokens(Path file, String json) {
        if (json == null) throw BadInputException.at(file, "__metadata__.tokens", "missing");
        if (json.isBlank()) throw BadInputException.at(file, "__metadata__.tokens", "must be a non-empty JSON array of token ids");
        try {
            JsonNode n = JSON.readTree(json);
            if (n == null || !n.isArray() || n.isEmpty()) throw new IllegalArgumentException();
            if (n.size() > MAX_TOKENS) throw BadInputException.at(file, "__metadata__.tokens", n.size() + " tokens; more than " + MAX_TOKENS + " is refused");
            int[] out = new int[n.size()];
            for (int i = 0; i < out.length; i++) {
                if (!n.get(i).isIntegralNumber() || !n.get(i).canConvertToInt() || n.get(i).asInt() < 0) throw new IllegalArgumentException();
                out[i] = n.get(i).asInt();
            }
            return out;
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw BadInputException.at(file, "__metadata__.tokens", "must be a non-empty JSON array of token ids");
        }
    }

    private static String[] parseProbeNames(Path file, String json) {
        if (json.isBlank()) throw BadInputException.at(file, "__metadata__.probes", "must be a JSON array of probe names");
        try {
            JsonNode n = JSON.readTree(json);
            if (n == null || !n.isArray()) throw new IllegalArgumentException();
            String[] out = new String[n.size()];
            for (int i = 0; i < out.length; i++) {
                if (!n.get(i).isTextual()) throw new IllegalArgumentException();
                out[i] = n.get(i).asText();
            }
            return out;
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw BadInputException.at(file, "__metadata__.probes", "must be a JSON array of probe names");
        }
    }
}
