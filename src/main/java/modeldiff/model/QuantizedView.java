package modeldiff.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tensors of a release as HF transformers holds them after loading: each well-formed quantized pair (MXFP4
 * {@code X_blocks} + {@code X_scales}; fp8 {@code X.weight} + {@code X.weight_scale_inv}, or fp8 {@code X} +
 * {@code X_scales_inv} for fused expert tensors) becomes one dequantized {@link TensorInfo} named as HF names the
 * parameter. A pair that cannot be dequantized (scale missing, misnamed, of the wrong dtype or shape, or the config not
 * saying the weights are quantized) stays as stored and gets a {@code problem}, keyed by the weight's name and naming
 * the scale tensor: reading it would be garbage (values cast without their scale, or an exponent byte read as a
 * number), so {@link Model#open} refuses it and lint reports it.
 */
record QuantizedView(Map<String, TensorInfo> tensors, Map<String, String> problems) {
    static final String BLOCKS = "_blocks", SCALES = "_scales", SCALE_INV = "_scale_inv", EXPERT_SCALE_INV = "_scales_inv";

    static QuantizedView of(Map<String, TensorInfo> stored, QuantizationConfig cfg) {
        Map<String, TensorInfo> out = new LinkedHashMap<>(stored);
        Map<String, String> problems = new LinkedHashMap<>();
        for (TensorInfo t : stored.values()) {
            if (t.name().endsWith(BLOCKS) && t.dtype() == DType.U8) mxfp4(t, stored, cfg, out, problems);
            else if (t.dtype() == DType.F8_E4M3) fp8(t, stored, cfg, out, problems);
        }
        for (TensorInfo t : stored.values()) orphanScale(t, stored, out, problems);
        return new QuantizedView(Collections.unmodifiableMap(out), Collections.unmodifiableMap(problems));
    }

    private static void mxfp4(TensorInfo blocks, Map<String, TensorInfo> stored, QuantizationConfig cfg,
                              Map<String, TensorInfo> out, Map<String, String> problems) {
        String base = blocks.name().substring(0, blocks.name().length() - BLOCKS.length());
        String scalesName = base + SCALES;
        TensorInfo scales = stored.get(scalesName);
        String why = null;
        long[] bs = blocks.shape();
        if (scales == null)
            why = "stored as MXFP4 '" + blocks.name() + "' but its scale tensor '" + scalesName + "' is missing"
                    + nearMiss(stored, base, scalesName, true) + ": blocks without their e8m0 scales cannot be dequantized";
        else if (bs.length != 4 || bs[3] != Quantized.MX_BLOCK / 2)
            why = "MXFP4 blocks '" + blocks.name() + "' have shape " + blocks.shapeString() + "; gpt-oss stores [experts, rows, blocks, 16]";
        else if (scales.dtype() != DType.U8)
            why = "scale tensor '" + scalesName + "' is " + scales.dtype() + "; MXFP4 scales are U8 e8m0 exponents (2^(b-127)), "
                    + "and a float read in their place is not a scale";
        else if (!Arrays.equals(scales.shape(), Arrays.copyOf(bs, 3)))
            why = "scale tensor '" + scalesName + "' has shape " + scales.shapeString() + " but '" + blocks.name() + "' "
                    + blocks.shapeString() + " needs one scale per block of 32: " + Arrays.toString(Arrays.copyOf(bs, 3));
        else if (!"mxfp4".equals(cfg.method()))
            why = "stored as MXFP4 ('" + blocks.name() + "' + '" + scalesName + "') but config.json's quantization_config "
                    + "does not say quant_method \"mxfp4\" (" + cfg.method() + "): HF would not dequantize it";
        else if (cfg.notConverted(base))
            why = "stored as MXFP4 but quantization_config.modules_to_not_convert lists its module: HF would not dequantize it";
        if (why != null) {
            problems.put(base, why);
            return;
        }
        long[] shape = {bs[0], bs[2] * Quantized.MX_BLOCK, bs[1]};   // HF: [E, R, G·32] transposed to [E, G·32, R]
        out.remove(blocks.name());
        out.remove(scalesName);
        out.put(base, new TensorInfo(base, blocks.file(), DType.BF16, shape, blocks.fileOffset(), blocks.byteLength(),
                new Quantized(Quantized.Format.MXFP4, blocks, scales, 1, Quantized.MX_BLOCK)));
    }

    /** HF's name for an fp8 tensor's inverse scale: X.weight → X.weight_scale_inv, a fused X → X_scales_inv. */
    static String fp8ScaleName(String name) {
        return name.endsWith(".weight") ? name + SCALE_INV : name + EXPERT_SCALE_INV;
    }

    private static void fp8(TensorInfo w, Map<String, TensorInfo> stored, QuantizationConfig cfg,
                            Map<String, TensorInfo> out, Map<String, String> problems) {
        String scaleName = fp8ScaleName(w.name());
        TensorInfo s = stored.get(scaleName);
        String why = null;
        long[] ws = w.shape();
        if (s == null)
            why = "is fp8 but its block scale '" + scaleName + "' is missing" + nearMiss(stored, w.name(), scaleName, true)
                    + ": fp8 values without their scale are wrong by that scale";
        else if (ws.length < 2)
            why = "is fp8 of shape " + w.shapeString() + "; block scales need a matrix [..., rows, cols]";
        else if (!s.dtype().decodable)
            why = "is fp8 but its block scale '" + scaleName + "' is " + s.dtype() + "; weight_scale_inv holds float scales";
        else if (!Arrays.equals(s.shape(), fp8ScaleShape(ws, cfg)))
            why = "is fp8 but its block scale '" + scaleName + "' has shape " + s.shapeString() + " where " + w.shapeString()
                    + " in " + cfg.blockRows() + "×" + cfg.blockCols() + " blocks (weight_block_size) needs "
                    + Arrays.toString(fp8ScaleShape(ws, cfg));
        else if (!"fp8".equals(cfg.method()))
            why = "is fp8 with block scales ('" + scaleName + "') but config.json's quantization_config does not say quant_method "
                    + "\"fp8\" (" + cfg.method() + "): HF would cast the fp8 values without their scale";
        else if (cfg.notConverted(w.name()))
            why = "is fp8 but quantization_config.modules_to_not_convert lists its module: HF would cast it without its scale";
        if (why != null) {
            problems.put(w.name(), "dtype F8_E4M3 " + why);
            return;
        }
        out.remove(scaleName);
        // F64: fp8 x float32 scale needs up to 28 significant bits; a pass rounding weights to its dtype rounds
        // (float) of the exact product, which is the float32 product HF and DeepSeek compute before casting
        out.put(w.name(), new TensorInfo(w.name(), w.file(), DType.F64, ws, w.fileOffset(), w.byteLength(),
                new Quantized(Quantized.Format.FP8_BLOCK, w, s, cfg.blockRows(), cfg.blockCols())));
    }

    /** [..., ⌈rows/b0⌉, ⌈cols/b1⌉]: one scale per tile, edge tiles ragged (DeepSeek-V3's weight_dequant). */
    static long[] fp8ScaleShape(long[] ws, QuantizationConfig cfg) {
        long[] s = ws.clone();
        s[s.length - 2] = Quantized.ceilDiv(ws[ws.length - 2], cfg.blockRows());
        s[s.length - 1] = Quantized.ceilDiv(ws[ws.length - 1], cfg.blockCols());
        return s;
    }

    /** A scale tensor whose weight is not stored quantized: the weight would be read as if it had no scale. */
    private static void orphanScale(TensorInfo s, Map<String, TensorInfo> stored, Map<String, TensorInfo> out, Map<String, String> problems) {
        String n = s.name(), weight;
        if (n.endsWith(".weight" + SCALE_INV)) weight = n.substring(0, n.length() - SCALE_INV.length());
        else if (n.endsWith(EXPERT_SCALE_INV)) weight = n.substring(0, n.length() - EXPERT_SCALE_INV.length());
        else if (n.endsWith(SCALES) && s.dtype() == DType.U8) weight = n.substring(0, n.length() - SCALES.length());
        else return;
        TensorInfo w = stored.get(weight);
        if (stored.containsKey(weight + BLOCKS) || w != null && w.dtype() == DType.F8_E4M3) return;   // handled with its weight
        if (w != null)
            problems.putIfAbsent(weight, "stored as " + w.dtype() + " next to a scale tensor '" + n + "': dequantized already, or "
                    + "cast without its scale?");
        else problems.putIfAbsent(weight, "its scale tensor '" + n + "' is there but neither '" + weight + "' nor '" + weight + BLOCKS
                + "' is" + nearMiss(stored, weight, n, false));
    }

    /**
     * " (found 'X' (misnamed?)" when a tensor named like the one expected exists: a scale ({@code scale} true) or a
     * weight (false: not a scale, not a bias).
     */
    private static String nearMiss(Map<String, TensorInfo> stored, String base, String expected, boolean scale) {
        List<String> near = new ArrayList<>();
        String stem = base.endsWith(".weight") ? base.substring(0, base.length() - 7) : base;
        for (String n : stored.keySet()) {
            String lower = n.toLowerCase(java.util.Locale.ROOT);
            boolean like = scale ? lower.contains("scale") : !lower.contains("scale") && !lower.endsWith("bias");
            if (!n.equals(base) && !n.equals(expected) && n.startsWith(stem) && like) near.add(n);
        }
        return near.isEmpty() ? "" : " (found '" + near.get(0) + "': misnamed?)";
    }
}
