package modeldiff.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.Fixtures;
import modeldiff.forward.ForwardInput;
import modeldiff.forward.Fixes;
import modeldiff.forward.ProbeLevel;
import modeldiff.forward.lowp.LowpPass;
import modeldiff.forward.reference.ReferencePass;
import modeldiff.numeric.Precision;
import modeldiff.trace.Trace;
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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Releases that ship quantized weights: MXFP4 (gpt-oss) and block-scaled fp8 (DeepSeek-V3) read as the values the
 * format specs define, computed independently by reference-impls/quant_fixtures.py (numpy, from the OCP bit layouts)
 * into src/test/resources/quant/; and a scale tensor missing, misnamed or malformed is an error naming it, never
 * silent garbage.
 */
class QuantizedWeightsTest {
    static final Path QUANT = Path.of("src/test/resources/quant");
    static final String GU = "model.layers.0.mlp.experts.gate_up_proj";
    static final String DOWN = "model.layers.0.mlp.down_proj.weight";

    record Raw(String dtype, long[] shape, byte[] data) {
        /** As an edit: remove the tensor. */
        static final Raw NONE = new Raw("", new long[0], new byte[0]);
    }

    // ---------------------------------------------------------------- values

    @Test
    void mxfp4DequantizesToTheSpecValuesInHfLayout() {
        TensorStore store = TensorStore.open(QUANT.resolve("mxfp4"));
        Map<String, TensorInfo> expected = expected("mxfp4");
        TensorInfo t = store.tensors().get(GU);
        assertArrayEquals(new long[]{2, 64, 6}, t.shape(), "HF: blocks [E, R, G, 16] -> [E, G*32, R]");
        assertEquals(1, store.tensors().size(), "blocks and scales are one tensor: " + store.tensors().keySet());
        assertEquals(2, store.storedTensors().size());
        double[] want = all(expected.get(GU));
        assertArrayEquals(want, store.readDoubles(GU));   // bit for bit, -0.0 included
        assertTrue(java.util.Arrays.stream(want).anyMatch(v -> Math.abs(v) == 6 * Math.scalb(1.0, 127)), "scale 2^127 covered");
        assertTrue(java.util.Arrays.stream(want).anyMatch(v -> Math.abs(v) == Math.scalb(0.5, -127)), "scale 2^-127 covered");
        // slices (element by element below a quarter expert, stored rows scattered above), the float32 view and the
        // mapped decoder agree with the whole
        java.util.Random rnd = new java.util.Random(16);
        for (int trial = 0; trial < 200; trial++) {
            int first = rnd.nextInt(want.length), count = rnd.nextInt(Math.min(want.length - first, trial < 100 ? 40 : 700) + 1);
            assertArrayEquals(java.util.Arrays.copyOfRange(want, first, first + count), TensorStore.readDoubles(t, first, count), first + "+" + count);
        }
        float[] f = TensorStore.readFloats(t, 0, t.elementCount());
        for (int i = 0; i < want.length; i++) assertEquals((float) want[i], f[i], 0.0, "float " + i);
        double[] mapped = new double[want.length];
        try (MappedTensor m = MappedTensor.open(t)) {
            m.decode(0, want.length, mapped, 0, 1, null);
        }
        assertArrayEquals(want, mapped);
    }

    @Test
    void fp8DequantizesExactlyWithRaggedBlockScales() {
        TensorStore store = TensorStore.open(QUANT.resolve("fp8"));
        Map<String, TensorInfo> expected = expected("fp8");
        assertEquals(2, store.tensors().size(), store.tensors().keySet().toString());
        for (String name : new String[]{DOWN, GU}) {
            double[] want = all(expected.get(name));
            assertArrayEquals(expected.get(name).shape(), store.tensors().get(name).shape(), name);
            assertArrayEquals(want, store.readDoubles(name), name);
            java.util.Random rnd = new java.util.Random(16);
            for (int trial = 0; trial < 100; trial++) {
                int first = rnd.nextInt(want.length), count = rnd.nextInt(Math.min(want.length - first, 400) + 1);
                assertArrayEquals(java.util.Arrays.copyOfRange(want, first, first + count),
                        TensorStore.readDoubles(store.tensors().get(name), first, count), name + " " + first + "+" + count);
            }
            float[] f = TensorStore.readFloats(store.tensors().get(name), 0, want.length);
            for (int i = 0; i < want.length; i++) assertEquals((float) want[i], f[i], 0.0, name + " float " + i);
        }
        assertTrue(store.quantProblems().isEmpty(), store.quantProblems().toString());
    }

    @Test
    void elementFormatsMatchTheirSpecTables() {
        assertEquals(448.0, Quantized.e4m3(0x7e));
        assertEquals(Math.scalb(1.0, -9), Quantized.e4m3(0x01), "smallest subnormal 2^-9");
        assertTrue(Double.isNaN(Quantized.e4m3(0xff)) && Double.isNaN(Quantized.e4m3(0x7f)));
        assertEquals(-6.0, Quantized.e2m1(0xf));
        assertEquals(0.5, Quantized.e2m1(1), "e2m1 subnormal");
        assertEquals(1.0, Quantized.e8m0(127));
        assertTrue(Double.isNaN(Quantized.e8m0(0xff)));
    }

    /** The gpt_oss fixture with MXFP4 experts runs exactly as a bf16 model holding numpy's dequantized experts. */
    @Test
    void gptOssMxfp4RunsAsItsDequantizedBf16Copy() {
        Model q = Model.open(QUANT.resolve("gpt_oss_mxfp4")), plain = Model.open(QUANT.resolve("gpt_oss_dequant"));
        ForwardInput in = new ForwardInput(new int[]{1, 17, 42, 99, 3, 250, 7, 8}, 0);
        Trace a = new ReferencePass().run(q, in, ProbeLevel.ALL), b = new ReferencePass().run(plain, in, ProbeLevel.ALL);
        for (String p : a.probeNames()) assertArrayEquals(b.probe(p).data(), a.probe(p).data(), "reference " + p);
        Trace la = new LowpPass(Precision.BF16, Fixes.NONE).run(q, in, ProbeLevel.ALL);
        Trace lb = new LowpPass(Precision.BF16, Fixes.NONE).run(plain, in, ProbeLevel.ALL);
        for (String p : la.probeNames()) assertArrayEquals(lb.probe(p).data(), la.probe(p).data(), "lowp:bf16 " + p);
        // and the quantized experts do differ from the bf16 release's: the comparison is not vacuous
        Trace orig = new ReferencePass().run(Model.open(Fixtures.model("gpt_oss")), in, ProbeLevel.ALL);
        assertTrue(!java.util.Arrays.equals(orig.probe("logits").data(), a.probe("logits").data()));
    }

    /**
     * The llama fixture with fp8 linear layers in ragged 32×48 blocks runs exactly as an F64 copy holding numpy's
     * dequantized weights, in the reference and in lowp (whose WEIGHT_LOAD rounds (float) of the exact product, the
     * float32 product HF computes before casting).
     */
    @Test
    void llamaFp8RunsAsItsDequantizedF64Copy() {
        Model q = Model.open(QUANT.resolve("llama_fp8")), plain = Model.open(QUANT.resolve("llama_fp8_dequant"));
        assertEquals(7L * q.config.numLayers, q.store.tensors().values().stream().filter(t -> t.quantized() != null).count());
        ForwardInput in = new ForwardInput(new int[]{1, 17, 42, 99, 3, 250, 7, 8}, 0);
        Trace a = new ReferencePass().run(q, in, ProbeLevel.ALL), b = new ReferencePass().run(plain, in, ProbeLevel.ALL);
        for (String p : a.probeNames()) assertArrayEquals(b.probe(p).data(), a.probe(p).data(), "reference " + p);
        for (Precision p : new Precision[]{Precision.BF16, Precision.FP32}) {
            Trace la = new LowpPass(p, Fixes.NONE).run(q, in, ProbeLevel.ALL), lb = new LowpPass(p, Fixes.NONE).run(plain, in, ProbeLevel.ALL);
            for (String n : la.probeNames()) assertArrayEquals(lb.probe(n).data(), la.probe(n).data(), "lowp " + p + " " + n);
        }
        Trace orig = new ReferencePass().run(Model.open(Fixtures.model("llama")), in, ProbeLevel.ALL);
        assertTrue(!java.util.Arrays.equals(orig.probe("logits").data(), a.probe("logits").data()), "fp8 rounding changes the model");
    }

    // ---------------------------------------------------------------- broken releases

    private static BadInputException refused(Path dir) {
        return assertThrows(BadInputException.class, () -> Model.open(dir));
    }

    @Test
    void mxfp4ScalesMissingMisnamedMisshapedOrFloatAreNamed(@TempDir Path tmp) throws IOException {
        String blocks = GU + "_blocks", scales = GU + "_scales";
        Path missing = copy(QUANT.resolve("gpt_oss_mxfp4"), tmp.resolve("missing"), Map.of(scales, Raw.NONE));
        assertTrue(refused(missing).getMessage().contains("'" + scales + "' is missing"), refused(missing).getMessage());

        Raw s = raw(QUANT.resolve("gpt_oss_mxfp4"), scales);
        Path misnamed = copy(QUANT.resolve("gpt_oss_mxfp4"), tmp.resolve("misnamed"), Map.of(scales, Raw.NONE, GU + "_scale", s));
        String m = refused(misnamed).getMessage();
        assertTrue(m.contains("'" + scales + "' is missing (found '" + GU + "_scale'"), m);

        Path shape = copy(QUANT.resolve("gpt_oss_mxfp4"), tmp.resolve("shape"),
                Map.of(scales, new Raw("U8", new long[]{8, 64, 1}, new byte[8 * 64])));
        m = refused(shape).getMessage();
        assertTrue(m.contains("'" + scales + "' has shape [8, 64, 1]") && m.contains("[8, 64, 2]"), m);

        // an e8m0 exponent byte stored (and so read) as a float is not a scale
        Path asFloat = copy(QUANT.resolve("gpt_oss_mxfp4"), tmp.resolve("float"),
                Map.of(scales, new Raw("F32", new long[]{8, 64, 2}, new byte[8 * 64 * 2 * 4])));
        m = refused(asFloat).getMessage();
        assertTrue(m.contains("'" + scales + "' is F32") && m.contains("e8m0"), m);

        // blocks misnamed: the scales name what is missing, and what was found
        Path blocksMisnamed = copy(QUANT.resolve("gpt_oss_mxfp4"), tmp.resolve("blocks"),
                Map.of(blocks, Raw.NONE, GU + "_block", raw(QUANT.resolve("gpt_oss_mxfp4"), blocks)));
        m = refused(blocksMisnamed).getMessage();
        assertTrue(m.contains("'" + scales + "' is there but neither '" + GU + "' nor '" + blocks + "' is (found '" + GU + "_block'"), m);

        Model.Inspection lint = Model.inspect(ModelConfig.load(shape), TensorStore.open(shape));
        assertTrue(lint.problems().get(GU).contains("has shape [8, 64, 1]"), lint.problems().toString());
        assertNull(lint.problems().get("model.layers.1.mlp.experts.gate_up_proj"), "layer 1 is intact");
    }

    @Test
    void fp8ScaleMissingMisnamedOrMisshapedIsNamed(@TempDir Path tmp) throws IOException {
        Path src = QUANT.resolve("fp8");
        String scale = DOWN + "_scale_inv";
        Path missing = copy(src, tmp.resolve("missing"), Map.of(scale, Raw.NONE));
        TensorStore st = TensorStore.open(missing);
        assertTrue(st.quantProblems().get(DOWN).contains("'" + scale + "' is missing"), st.quantProblems().toString());
        assertEquals(DType.F8_E4M3, st.tensors().get(DOWN).dtype(), "left as stored, unreadable");
        assertThrows(BadInputException.class, () -> st.readDoubles(DOWN));

        Path misnamed = copy(src, tmp.resolve("misnamed"), Map.of(scale, Raw.NONE, DOWN.replace(".weight", ".weight_scale"), raw(src, scale)));
        assertTrue(TensorStore.open(misnamed).quantProblems().get(DOWN).contains("(found 'model.layers.0.mlp.down_proj.weight_scale'"),
                TensorStore.open(misnamed).quantProblems().toString());

        Path shape = copy(src, tmp.resolve("shape"), Map.of(scale, new Raw("F32", new long[]{1, 2}, new byte[8])));
        String why = TensorStore.open(shape).quantProblems().get(DOWN);
        assertTrue(why.contains("'" + scale + "' has shape [1, 2]") && why.contains("needs [2, 2]"), why);

        // no quant_method "fp8" in config.json: HF would cast the fp8 values without their scale
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(src.resolve("config.json").toFile());
        cfg.remove("quantization_config");
        Path noConfig = copy(src, tmp.resolve("noconfig"), Map.of());
        Files.writeString(noConfig.resolve("config.json"), cfg.toString());
        assertTrue(TensorStore.open(noConfig).quantProblems().get(DOWN).contains("does not say quant_method \"fp8\""));
    }

    /** An e8m0 scale byte 0xff is NaN (OCP MX): reading its block is refused, naming the scale tensor. */
    @Test
    void nanE8m0ScaleIsRefusedOnRead(@TempDir Path tmp) throws IOException {
        String scales = GU + "_scales";
        Raw s = raw(QUANT.resolve("mxfp4"), scales);
        byte[] b = s.data().clone();
        b[3] = (byte) 0xff;
        Path dir = copy(QUANT.resolve("mxfp4"), tmp.resolve("m"), Map.of(scales, new Raw("U8", s.shape(), b)));
        TensorStore store = TensorStore.open(dir);
        BadInputException e = assertThrows(BadInputException.class, () -> store.readDoubles(GU));
        assertTrue(e.getMessage().contains("'" + scales + "'") && e.getMessage().contains("0xff"), e.getMessage());
    }

    /** modules_to_not_convert names the module: HF keeps it unquantized, so fp8 stored there would be cast raw. */
    @Test
    void quantizedWeightInANotConvertedModuleIsNamed(@TempDir Path tmp) throws IOException {
        Path src = QUANT.resolve("llama_fp8");
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(src.resolve("config.json").toFile());
        ((ObjectNode) cfg.get("quantization_config")).putArray("modules_to_not_convert").add("lm_head").add("self_attn.o_proj");
        Path dir = copy(src, tmp.resolve("m"), Map.of());
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        BadInputException e = refused(dir);
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.o_proj.weight") && e.getMessage().contains("modules_to_not_convert"), e.getMessage());
        assertEquals(3, TensorStore.open(dir).quantProblems().size(), "o_proj of each layer");
    }

    /** Another quantization (AWQ's qweight instead of weight): the missing weight's error names the quant_method. */
    @Test
    void otherQuantMethodIsNamed(@TempDir Path tmp) throws IOException {
        Path src = Fixtures.model("llama");
        String q = "model.layers.0.self_attn.q_proj";
        Path dir = copy(src, tmp.resolve("m"), Map.of(q + ".weight", Raw.NONE, q + ".qweight", new Raw("I32", new long[]{64, 8}, new byte[64 * 8 * 4])));
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(src.resolve("config.json").toFile());
        cfg.putObject("quantization_config").put("quant_method", "awq").put("bits", 4);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        String m = refused(dir).getMessage();
        assertTrue(m.contains(q + ".weight") && m.contains("quant_method 'awq'"), m);
    }

    /** A bf16 weight next to a scale tensor: already dequantized, or cast without its scale; either way not silent. */
    @Test
    void orphanScaleNextToAPlainWeightIsNamed(@TempDir Path tmp) throws IOException {
        Path dir = copy(QUANT.resolve("gpt_oss_dequant"), tmp.resolve("m"), Map.of(
                "model.layers.0.self_attn.q_proj.weight_scale_inv", new Raw("F32", new long[]{1, 1}, new byte[4])));
        BadInputException e = refused(dir);
        assertTrue(e.getMessage().contains("model.layers.0.self_attn.q_proj.weight") && e.getMessage().contains("weight_scale_inv"), e.getMessage());
    }

    /** The strict load of the fp8 release from the mixtral fixture: the scale is named when it is missing. */
    @Test
    void fp8ExpertWithoutItsScaleNamesTheScaleInModelOpenAndLint(@TempDir Path dir) throws IOException {
        String w1 = "model.layers.0.block_sparse_moe.experts.0.w1.weight";
        Path m = copy(Fixtures.model("mixtral"), dir, Map.of(w1, new Raw("F8_E4M3", new long[]{32, 64}, new byte[32 * 64])));
        BadInputException e = refused(m);
        assertTrue(e.getMessage().contains(w1) && e.getMessage().contains("experts.0.w1.weight_scale_inv' is missing"), e.getMessage());
        String lint = Model.inspect(ModelConfig.load(m), TensorStore.open(m)).problems().get(w1);
        assertTrue(lint.startsWith("dtype F8_E4M3") && lint.contains("weight_scale_inv' is missing"), lint);
    }

    // ---------------------------------------------------------------- helpers

    /** numpy's float64 dequantized values (expected.safetensors next to the release). */
    static Map<String, TensorInfo> expected(String release) {
        return SafeTensorsFile.open(QUANT.resolve(release).resolve("expected.safetensors")).tensors();
    }

    static double[] all(TensorInfo t) {
        return TensorStore.readDoubles(t, 0, t.elementCount());
    }

    /** Stored bytes of one tensor. */
    static Raw raw(Path dir, String name) throws IOException {
        TensorInfo t = TensorStore.open(dir).storedTensors().get(name);
        byte[] b = new byte[(int) t.byteLength()];
        try (var ch = java.nio.channels.FileChannel.open(t.file())) {
            ByteBuffer buf = ByteBuffer.wrap(b);
            while (buf.hasRemaining()) ch.read(buf, t.fileOffset() + buf.position());
        }
        return new Raw(t.dtype().name(), t.shape(), b);
    }

    /** A copy of a release folder's config.json and stored tensors (bytes as stored), with {@code edit} applied. */
    static Path copy(Path src, Path dir, Map<String, Raw> edit) throws IOException {
        Files.createDirectories(dir);
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        Map<String, Raw> all = new LinkedHashMap<>();
        for (String name : TensorStore.open(src).storedTensors().keySet()) all.put(name, raw(src, name));
        edit.forEach((k, v) -> {
            if (v == Raw.NONE) all.remove(k);
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
}
