package modeldiff.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Releases that ship quantized weights modeldiff cannot read yet: the error names the tensor and, above all, a missing
 * scale tensor (fp8 without weight_scale_inv, MXFP4 blocks without scales), never silent garbage; lint reports the same.
 */
class QuantizedWeightsTest {
    private record Raw(String dtype, long[] shape, byte[] data) {
    }

    /** The fixture's tensors as F32, with {@code edit} applied (null value: removed). */
    private static Path release(Path dir, String fixture, Map<String, Raw> edit) throws IOException {
        Path src = Fixtures.model(fixture);
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        TensorStore store = TensorStore.open(src);
        Map<String, Raw> all = new LinkedHashMap<>();
        for (String name : store.tensors().keySet()) {
            double[] v = store.readDoubles(name);
            ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (double d : v) b.putFloat((float) d);
            all.put(name, new Raw("F32", store.tensors().get(name).shape(), b.array()));
        }
        edit.forEach((k, v) -> {
            if (v == null) all.remove(k);
            else all.put(k, v);
        });
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (var e : all.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype());
            var shape = t.putArray("shape");
            for (long d : e.getValue().shape()) shape.add(d);
            t.putArray("data_offsets").add(data.size()).add(data.size() + e.getValue().data().length);
            data.write(e.getValue().data());
        }
        byte[] h = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length + pad).array());
        out.write(h);
        for (int i = 0; i < pad; i++) out.write(' ');
        out.write(data.toByteArray());
        Files.write(dir.resolve("model.safetensors"), out.toByteArray());
        return dir;
    }

    private static final String W1 = "model.layers.0.block_sparse_moe.experts.0.w1.weight";

    @Test
    void fp8WeightWithoutItsScaleNamesTheScale(@TempDir Path dir) throws IOException {
        release(dir, "mixtral", Map.of(W1, new Raw("F8_E4M3", new long[]{32, 64}, new byte[32 * 64])));
        BadInputException e = assertThrows(BadInputException.class, () -> Model.open(dir));
        assertTrue(e.getMessage().contains(W1) && e.getMessage().contains("experts.0.w1.weight_scale_inv' is missing"), e.getMessage());
        String lint = Model.inspect(ModelConfig.load(dir), TensorStore.open(dir)).problems().get(W1);
        assertTrue(lint.startsWith("dtype F8_E4M3") && lint.contains("weight_scale_inv' is missing"), lint);
    }

    @Test
    void fp8WeightWithItsScaleIsRefusedAsNotYetSupported(@TempDir Path dir) throws IOException {
        release(dir, "mixtral", Map.of(W1, new Raw("F8_E4M3", new long[]{32, 64}, new byte[32 * 64]),
                "model.layers.0.block_sparse_moe.experts.0.w1.weight_scale_inv", new Raw("F32", new long[]{1, 1}, new byte[4])));
        BadInputException e = assertThrows(BadInputException.class, () -> Model.open(dir));
        assertTrue(e.getMessage().contains("does not dequantize"), e.getMessage());
    }

    @Test
    void mxfp4BlocksWithoutScalesNameTheScales(@TempDir Path dir) throws IOException {
        String gu = "model.layers.0.mlp.experts.gate_up_proj";
        Map<String, Raw> edit = new LinkedHashMap<>();
        edit.put(gu, null);
        edit.put(gu + "_blocks", new Raw("U8", new long[]{8, 64, 2, 16}, new byte[8 * 64 * 2 * 16]));
        release(dir, "gpt_oss", edit);
        BadInputException e = assertThrows(BadInputException.class, () -> Model.open(dir));
        assertTrue(e.getMessage().contains(gu + "_scales' is missing"), e.getMessage());
    }
}
