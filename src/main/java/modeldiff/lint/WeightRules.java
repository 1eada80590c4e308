package modeldiff.lint;

import modeldiff.model.DType;
import modeldiff.model.Family;
import modeldiff.model.TensorInfo;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static modeldiff.lint.Severity.ERROR;
import static modeldiff.lint.Severity.INFO;
import static modeldiff.lint.Severity.WARNING;

/**
 * Rules on the tensors: which exist, their dtypes, and their values. Only the embedding and lm_head are read for the
 * row rules; weights.nonfinite streams every other tensor unless {@link LintOptions#nonfinite()} is off.
 */
final class WeightRules {
    /** A row is untrained when its L2 norm is 0 or below this fraction of the median row norm. */
    static final double UNTRAINED_RELATIVE = 1e-3;

    private WeightRules() {
    }

    static void run(LintContext c) {
        if (c.store == null) return;
        dtypes(c);
        quantScales(c);
        presence(c);
        matrices(c);
        nonfinite(c);
    }

    // ---------------------------------------------------------------- dtype

    private static void dtypes(LintContext c) {
        Map<DType, Long> elements = new TreeMap<>();
        Map<DType, List<String>> names = new TreeMap<>();
        for (TensorInfo t : c.store.tensors().values()) {
            if (!t.dtype().decodable && t.dtype() != DType.F8_E4M3 && t.dtype() != DType.F8_E5M2) continue;
            if (t.quantized() != null) continue;     // declared by quantization_config, not by dtype
            elements.merge(t.dtype(), t.elementCount(), Long::sum);
            names.computeIfAbsent(t.dtype(), k -> new ArrayList<>()).add(t.name());
        }
        if (elements.isEmpty()) return;
        DType stored = elements.entrySet().stream().max(Map.Entry.comparingByValue()).get().getKey();
        Map<String, Long> storedEv = new LinkedHashMap<>();
        elements.forEach((d, n) -> storedEv.put(d.torchName(), n));
        String declared = c.config != null ? c.config.declaredDtype
                : c.raw == null ? null : LintContext.text(c.raw, c.raw.has("dtype") ? "dtype" : "torch_dtype");
        if (declared == null) {
            c.add(Rules.DTYPE_MISMATCH, INFO, "config.json declares no dtype (dtype / torch_dtype); the weights are stored as "
                            + stored.torchName() + " and HF transformers loads float32 unless told otherwise", "add \"dtype\": \"" + stored.torchName() + "\"",
                    "stored_elements", storedEv);
        } else {
            String d = declared.toLowerCase(Locale.ROOT).replace("torch.", "");
            if (!d.equals("auto") && !d.equals(stored.torchName())) {
                boolean lossy = width(d) > 0 && width(d) < stored.bytes;
                c.add(Rules.DTYPE_MISMATCH, WARNING, "config declares " + declared + " but the weights are stored as " + stored.torchName()
                                + (lossy ? ": loading as declared rounds the stored weights" : ": HF loads (and computes) in the declared type, "
                                + "implementations that keep the stored type compute differently"),
                        "set dtype to \"" + stored.torchName() + "\" (or convert the weights)",
                        "declared", declared, "stored", stored.torchName(), "stored_elements", storedEv);
            }
        }
        if (elements.size() > 1) {
            List<String> minority = new ArrayList<>();
            names.forEach((dt, ns) -> {
                if (dt != stored) minority.addAll(ns);
            });
            c.add(Rules.DTYPE_MISMATCH, INFO, minority.size() + " tensor(s) are not stored as " + stored.torchName()
                            + " (mixed precision release); implementations that cast everything to one type differ on them",
                    null, "stored_elements", storedEv, "tensors", c.cap(minority), "count", minority.size());
        }
    }

    private static int width(String torchName) {
        return switch (torchName) {
            case "float64", "double" -> 8;
            case "float32", "float" -> 4;
            case "float16", "half", "bfloat16" -> 2;
            default -> 0;
        };
    }

    // ---------------------------------------------------------------- missing / unexpected / shape

    private static void presence(LintContext c) {
        if (c.inspection == null) return;
        List<String> missing = new ArrayList<>();
        c.inspection.problems().forEach((name, why) -> {
            if (c.store.quantProblems().containsKey(name)) return;   // weights.quant_scale says it
            if (why.startsWith("missing")) {
                if (name.equals(headName(c))) return; // config.tie_mismatch says it better
                missing.add(name);
            } else if (why.startsWith("shape")) {
                if (!c.explainedTensors.contains(name))
                    c.add(Rules.SHAPE_MISMATCH, ERROR, "tensor '" + name + "': " + why, "fix config.json sizes or the weights",
                            "tensor", name, "problem", why);
            } else {
                c.add(Rules.DTYPE_MISMATCH, ERROR, "tensor '" + name + "': " + why, "store weights as a float type",
                        "tensor", name, "problem", why);
            }
        });
        if (!missing.isEmpty())
            c.add(Rules.MISSING, ERROR, missing.size() + " tensor(s) the " + c.family + " family needs are absent, first '" + missing.get(0) + "'",
                    "check model_type and the checkpoint's tensor names", "tensors", c.cap(missing), "count", missing.size());
        List<String> unexpected = new ArrayList<>(), buffers = new ArrayList<>(), mtp = new ArrayList<>();
        String mtpPrefix = mtpLayers(c);
        for (String name : c.store.tensors().keySet()) {
            if (c.inspection.expected().contains(name) || partOfBrokenQuant(c, name)) continue;
            if (harmlessBuffer(c, name)) buffers.add(name);
            else if (mtpPrefix != null && name.matches(mtpPrefix)) mtp.add(name);
            else unexpected.add(name);
        }
        if (!mtp.isEmpty())
            c.add(Rules.UNEXPECTED, INFO, mtp.size() + " tensor(s) of the num_nextn_predict_layers multi-token-prediction layer(s) ("
                            + mtp.get(0) + ", ...): a training/speculative-decoding head outside the next-token forward pass, skipped",
                    null, "tensors", c.cap(mtp), "count", mtp.size());
        if (!unexpected.isEmpty())
            c.add(Rules.UNEXPECTED, WARNING, unexpected.size() + " tensor(s) the " + c.family + " family does not read, first '"
                            + unexpected.get(0) + "': weights that were trained but are dropped (wrong model_type or naming?)",
                    "check model_type / architectures against the checkpoint", "tensors", c.cap(unexpected), "count", unexpected.size());
        if (!buffers.isEmpty())
            c.add(Rules.UNEXPECTED, INFO, buffers.size() + " saved buffer(s) the family recomputes (" + buffers.get(0) + ", ...): ignored",
                    null, "tensors", c.cap(buffers), "count", buffers.size());
    }

    /** One finding per quantized weight whose scale is missing or malformed (or scale without weight), naming both. */
    private static void quantScales(LintContext c) {
        c.store.quantProblems().forEach((name, why) -> c.add(Rules.QUANT_SCALE, ERROR, "tensor '" + name + "': " + why,
                "ship the scale tensor under HF's name and shape (X_scales U8 [E, R, G] for MXFP4 X_blocks; "
                        + "X.weight_scale_inv float [ceil(R/b0), ceil(C/b1)] for fp8) and declare quantization_config",
                "tensor", name, "problem", why));
    }

    /** The stored blocks/scales of a weight already reported by weights.quant_scale. */
    private static boolean partOfBrokenQuant(LintContext c, String name) {
        for (String k : c.store.quantProblems().keySet()) if (name.equals(k) || name.startsWith(k + "_") || name.startsWith(k + ".weight")) return true;
        return false;
    }

    /**
     * A regex for the tensors of DeepSeek-V3's multi-token-prediction layers (config num_nextn_predict_layers = n): they
     * are stored as layers num_hidden_layers .. num_hidden_layers + n − 1, which HF transformers does not load either.
     */
    static String mtpLayers(LintContext c) {
        if (c.raw == null) return null;
        int n = c.raw.path("num_nextn_predict_layers").asInt(0), layers = c.raw.path("num_hidden_layers").asInt(-1);
        if (n <= 0 || layers < 0) return null;
        StringBuilder alt = new StringBuilder();
        for (int i = 0; i < n; i++) alt.append(i == 0 ? "" : "|").append(layers + i);
        return "(model\\.)?layers\\.(" + alt + ")\\..*";
    }

    private static boolean harmlessBuffer(LintContext c, String name) {
        if (name.endsWith("rotary_emb.inv_freq")) return true;
        return c.family != null && c.family.layout == Family.Layout.GPT2
                && (name.endsWith(".attn.bias") || name.endsWith(".attn.masked_bias"));
    }

    // ---------------------------------------------------------------- embedding / lm_head rows, tying

    /** The untied output head's tensor name: GPT-NeoX calls it embed_out. */
    private static String headName(LintContext c) {
        return c.family != null && c.family.layout == modeldiff.model.Family.Layout.NEOX ? "embed_out.weight" : "lm_head.weight";
    }

    private static void matrices(LintContext c) {
        TensorInfo emb, head;
        boolean tied;
        if (c.inspection != null) {
            emb = c.tensor(c.inspection.embedding());
            head = c.tensor(headName(c));
            tied = c.config.tieWordEmbeddings;
        } else {
            emb = c.firstTensor("model.embed_tokens.weight", "embed_tokens.weight", "transformer.wte.weight", "wte.weight");
            head = c.tensor(headName(c));
            tied = c.raw != null && c.raw.has("tie_word_embeddings") ? c.raw.get("tie_word_embeddings").asBoolean(false)
                    : c.family != null && Boolean.TRUE.equals(c.family.defaults.get("tie_word_embeddings"));
        }
        if (emb != null && !usable(emb)) emb = null;
        if (head != null && !usable(head)) head = null;
        // Tied: HF reads only the embedding; a stored lm_head.weight is compared with it in the same pass (and its own
        // NaN / Inf are left to the streaming scan). Untied: each matrix is scanned once, no comparison.
        boolean compare = tied && emb != null && head != null && Arrays.equals(emb.shape(), head.shape());
        if (emb != null) c.embeddingStats = TensorScan.matrix(emb, compare ? head : null, c.options);
        if (head != null && !tied) c.lmHeadStats = TensorScan.matrix(head, null, c.options);

        if (compare) {
            TensorScan.MatrixStats s = c.embeddingStats;
            if (s.differingRows() > 0)
                c.add(Rules.TIE_MISMATCH, ERROR, "tie_word_embeddings is true but the stored lm_head.weight differs from " + s.tensor()
                                + " in " + s.differingRows() + " of " + s.rows() + " rows: HF ties them and drops lm_head.weight, "
                                + "implementations that load lm_head.weight (as written) compute other logits",
                        "set tie_word_embeddings false if lm_head.weight is the trained head, else drop lm_head.weight",
                        "embedding", s.tensor(), "lm_head", "lm_head.weight", "differing_rows", s.differingRows(),
                        "first_differing_rows", s.firstDifferingRows(), "max_abs_diff", finite(s.maxAbsDiff()));
        } else if (tied && emb != null && c.tensor(headName(c)) != null) {
            TensorInfo h = c.tensor(headName(c));
            c.add(Rules.TIE_MISMATCH, ERROR, "tie_word_embeddings is true but the stored lm_head.weight " + h.shapeString() + " / "
                            + h.dtype() + " cannot be compared with " + emb.name() + " " + emb.shapeString(),
                    "drop lm_head.weight or set tie_word_embeddings false", "embedding", emb.name(), "lm_head", h.name());
        } else if (!tied && c.tensor(headName(c)) == null && (c.inspection != null || emb != null)) {
            c.add(Rules.TIE_MISMATCH, ERROR, "tie_word_embeddings is false but there is no lm_head.weight: HF initialises the head "
                            + "randomly (with a warning), implementations that fall back to the embedding compute other logits",
                    "set tie_word_embeddings true if the head is the embedding, else add lm_head.weight",
                    "tie_word_embeddings", false, "embedding", emb == null ? null : emb.name());
        }

        if (c.embeddingStats != null) untrained(c, c.embeddingStats, tied ? " (also the tied lm_head)" : "", true);
        if (c.lmHeadStats != null) untrained(c, c.lmHeadStats, "", false);
        for (TensorScan.MatrixStats s : new TensorScan.MatrixStats[]{c.embeddingStats, c.lmHeadStats}) {
            if (s != null && s.nan() + s.inf() > 0)
                nonfiniteFinding(c, new TensorScan.Nonfinite(s.tensor(), s.nan(), s.inf(), s.firstNonfinite()));
        }
    }

    private static boolean usable(TensorInfo t) {
        return t.quantized() == null && t.rank() == 2 && TensorScan.scannable(t.dtype()) && t.shape()[0] > 0 && t.shape()[1] > 0;
    }

    private static void untrained(LintContext c, TensorScan.MatrixStats s, String note, boolean embedding) {
        double[] finite = Arrays.stream(s.rowNorms()).filter(Double::isFinite).sorted().toArray();
        if (finite.length == 0) return;
        int n = finite.length;
        double median = n % 2 == 1 ? finite[n / 2] : 0.5 * (finite[n / 2 - 1] + finite[n / 2]);
        double threshold = UNTRAINED_RELATIVE * median;
        Set<Integer> pads = new LinkedHashSet<>(c.tokenIds("pad_token_id"));
        List<Integer> flagged = new ArrayList<>(), padRows = new ArrayList<>();
        double maxFlagged = 0;
        for (int r = 0; r < s.rows(); r++) {
            double norm = s.rowNorms()[r];
            if (!Double.isFinite(norm) || !(norm == 0 || norm < threshold)) continue;
            maxFlagged = Math.max(maxFlagged, norm);
            if (pads.contains(r)) padRows.add(r);
            else flagged.add(r);
            if (embedding) c.untrainedEmbeddingRows.add(r);
        }
        if (flagged.isEmpty() && padRows.isEmpty()) return;
        Object[] ev = {"tensor", s.tensor(), "count", flagged.size(), "rows", c.cap(flagged), "pad_rows", padRows.isEmpty() ? null : padRows,
                "median_row_norm", median, "threshold", threshold, "max_flagged_norm", maxFlagged, "reference", Rules.REF_LLAMA3_UNTRAINED};
        if (flagged.isEmpty()) {
            c.add(Rules.UNTRAINED_ROWS, INFO, s.tensor() + note + ": only the pad row(s) " + padRows + " are untrained "
                    + "(nn.Embedding's padding_idx keeps them at zero; expected)", null, ev);
            return;
        }
        c.add(Rules.UNTRAINED_ROWS, WARNING, s.tensor() + note + ": " + flagged.size() + " row(s) of " + s.rows()
                        + " are untrained (L2 norm 0 or < " + UNTRAINED_RELATIVE + " x median " + String.format(Locale.ROOT, "%.4g", median)
                        + "), first " + c.cap(flagged).subList(0, Math.min(8, flagged.size()))
                        + (embedding ? ": inputs with these tokens, or fine-tunes that start using them, see a near-zero vector (Llama 3 base's reserved / chat tokens, "
                        + Rules.REF_LLAMA3_UNTRAINED + ")" : ": the model can never score these tokens sensibly"),
                "set these rows to the mean of the trained rows (what Unsloth does for Llama 3 base) before fine-tuning on them",
                ev);
    }

    // ---------------------------------------------------------------- NaN / Inf

    private static void nonfinite(LintContext c) {
        if (!c.options.nonfinite()) return;
        Set<String> done = new LinkedHashSet<>();
        if (c.embeddingStats != null) done.add(c.embeddingStats.tensor());
        if (c.lmHeadStats != null) done.add(c.lmHeadStats.tensor());
        List<TensorInfo> rest = c.store.tensors().values().stream().filter(t -> !done.contains(t.name())).toList();
        for (TensorScan.Nonfinite n : TensorScan.nonfinite(rest, c.options).values())
            if (n.total() > 0) nonfiniteFinding(c, n);
        quantizedNonfinite(c, rest);
    }

    /**
     * Dequantized tensors have no float bytes for the scan above: their NaN codes are counted in the stored bytes (an
     * e4m3 S.1111.111 value, an e8m0 0xFF scale that makes its 32 values NaN), and fp8 float scales are scanned.
     */
    private static void quantizedNonfinite(LintContext c, List<TensorInfo> tensors) {
        List<TensorInfo> floatScales = new ArrayList<>();
        for (TensorInfo t : tensors) {
            modeldiff.model.Quantized q = t.quantized();
            if (q == null) continue;
            boolean fp8 = q.format() == modeldiff.model.Quantized.Format.FP8_BLOCK;
            if (fp8) floatScales.add(q.scales());
            TensorInfo stored = fp8 ? q.data() : q.scales();
            long[] count = countBytes(stored, fp8 ? b -> (b & 0x7f) == 0x7f : b -> b == modeldiff.model.Quantized.E8M0_NAN);
            if (count[0] > 0) nonfiniteFinding(c, new TensorScan.Nonfinite(stored.name(), count[0], 0, count[1]));
        }
        for (TensorScan.Nonfinite n : TensorScan.nonfinite(floatScales, c.options).values())
            if (n.total() > 0) nonfiniteFinding(c, n);
    }

    /** {matches, first matching index} over a U8 / fp8 tensor's stored bytes, read in 1 MiB pieces. */
    private static long[] countBytes(TensorInfo t, java.util.function.IntPredicate match) {
        long n = 0, first = -1;
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(1 << 20);
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(t.file(), java.nio.file.StandardOpenOption.READ)) {
            for (long done = 0; done < t.byteLength(); ) {
                buf.clear().limit((int) Math.min(buf.capacity(), t.byteLength() - done));
                while (buf.hasRemaining())
                    if (ch.read(buf, t.fileOffset() + done + buf.position()) < 0) return new long[]{n, first};
                for (int i = 0; i < buf.limit(); i++)
                    if (match.test(buf.get(i) & 0xff)) {
                        if (first < 0) first = done + i;
                        n++;
                    }
                done += buf.limit();
            }
        } catch (java.io.IOException e) {
            return new long[]{n, first};
        }
        return new long[]{n, first};
    }

    private static void nonfiniteFinding(LintContext c, TensorScan.Nonfinite n) {
        TensorInfo t = c.tensor(n.tensor());
        c.add(Rules.NONFINITE, ERROR, "tensor '" + n.tensor() + "' holds " + n.nan() + " NaN and " + n.inf() + " Inf value(s)"
                        + (t != null ? " of " + t.elementCount() : "") + "; first at flat index " + n.first()
                        + (t != null ? " " + index(t, n.first()) : ""),
                "re-export the weights from a good checkpoint (NaN/Inf propagate through every token)",
                "tensor", n.tensor(), "nan", n.nan(), "inf", n.inf(), "first_index", n.first(),
                "first_position", t == null ? null : position(t, n.first()));
    }

    private static List<Long> position(TensorInfo t, long flat) {
        long[] pos = new long[t.rank()];
        for (int d = t.rank() - 1; d >= 0; d--) {
            long size = Math.max(1, t.shape()[d]);
            pos[d] = flat % size;
            flat /= size;
        }
        List<Long> out = new ArrayList<>();
        for (long p : pos) out.add(p);
        return out;
    }

    private static String index(TensorInfo t, long flat) {
        return position(t, flat).toString();
    }

    private static Double finite(double d) {
        return Double.isFinite(d) ? d : null;
    }
}
