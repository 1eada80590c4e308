package modeldiff.synth;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.forward.kernel.Parallel;
import modeldiff.model.BadInputException;
import modeldiff.model.DType;
import modeldiff.model.Family;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.MoeSpec;
import modeldiff.model.SafeTensorsWriter;
import modeldiff.model.TensorStore;
import modeldiff.util.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Writes a model folder of a real shape ({@link Shapes}; dense or MoE Llama-layout families) with seeded random weights, laid out as HF's
 * save_pretrained lays it out: config.json, tensors in state-dict order split into shards of at most
 * {@link #SHARD_BYTES} (a tensor never split; a new shard when the next tensor would overflow the current one),
 * model-0000i-of-0000n.safetensors plus model.safetensors.index.json (or a single model.safetensors), tensors
 * sorted by name inside each file as the safetensors library writes them.
 * <p>
 * Weights are produced chunk by chunk while the shards are written, so memory does not grow with the model. Values:
 * matrices and embeddings uniform with the config's initializer_range as standard deviation, norm weights their
 * identity (1, or 0 for Gemma's (1 + w) norms) ± 0.1, biases uniform ± initializer_range. Each block of
 * {@link #BLOCK} elements of a tensor has its own generator seeded from (seed, tensor name, block), so the bytes depend
 * on the seed only, not on the thread count.
 */
public final class SyntheticModel {
    /** HF's default max_shard_size "5GB" (decimal). */
    public static final long SHARD_BYTES = 5_000_000_000L;
    static final int BLOCK = 1 << 16;
    public static final String PROVENANCE = "modeldiff-synth.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private SyntheticModel() {
    }

    private enum Kind { MATRIX, NORM, BIAS }

    record Tensor(String name, long[] shape, Kind kind) {
        long count() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    public record Result(Path dir, int shards, long bytes, int tensors) {
    }

    /**
     * @param layers null for the shape's own layer count
     * @param dtype  BF16 or F16; config.json's torch_dtype is set to match when the release declares another
     */
    public static Result write(String shape, Path out, long seed, Integer layers, DType dtype, boolean force, Consumer<String> progress) {
        ObjectNode config;
        try {
            config = (ObjectNode) JSON.readTree(Shapes.configJson(shape));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return write(config, shape, Shapes.SOURCES.get(shape), out, seed, layers, dtype, force, SHARD_BYTES, progress);
    }

    /** The same for any Llama-layout config (tests use odd sizes), with the shard size given. */
    public static Result write(ObjectNode config, String shape, String source, Path out, long seed, Integer layers, DType dtype,
                               boolean force, long shardBytes, Consumer<String> progress) {
        if (dtype != DType.BF16 && dtype != DType.F16) throw new BadInputException("--dtype must be bf16 or fp16");
        config = config.deepCopy();
        if (layers != null) {
            if (layers < 1) throw new BadInputException("--layers must be at least 1, got " + layers);
            config.put("num_hidden_layers", layers);
            truncateLayerTypes(config, layers);
        }
        // The weights are plain bf16/fp16, not the release's quantized format (gpt-oss ships MXFP4 experts): a
        // quantization_config would make a loader look for *_blocks / *_scales tensors that are not there.
        boolean dequantized = config.remove("quantization_config") != null;
        String declared = config.has("torch_dtype") || !config.has("dtype") ? "torch_dtype" : "dtype";
        config.put(declared, dtype.torchName());
        prepareDir(out, force);
        // The resources are already in sort_keys order.
        AtomicFiles.writeString(out.resolve("config.json"), pythonJson(config));
        ModelConfig c = ModelConfig.load(out);
        List<Tensor> tensors = stateDict(c);
        double std = config.path("initializer_range").asDouble(0.02);

        List<List<Tensor>> shards = new ArrayList<>();
        long current = 0, total = 0;
        for (Tensor t : tensors) {
            long bytes = t.count() * dtype.bytes;
            if (shards.isEmpty() || (current > 0 && current + bytes > shardBytes)) {
                shards.add(new ArrayList<>());
                current = 0;
            }
            shards.get(shards.size() - 1).add(t);
            current += bytes;
            total += bytes;
        }
        checkSpace(out, total);
        Parallel par = Parallel.of(Parallel.defaultThreads());
        Map<String, String> weightMap = new TreeMap<>();
        for (int s = 0; s < shards.size(); s++) {
            String file = shards.size() == 1 ? TensorStore.SINGLE_FILE
                    : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
            List<Tensor> inShard = new ArrayList<>(shards.get(s));
            inShard.sort(Comparator.comparing(Tensor::name));
            SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
            for (Tensor t : inShard) {
                w.add(t.name, dtype, t.shape, values(t, seed, std, c.family, par));
                weightMap.put(t.name, file);
            }
            progress.accept(String.format("writing %s (%d tensors, %.2f GB)", file, inShard.size(), w.dataBytes() / 1e9));
            w.write(out.resolve(file));
        }
        if (shards.size() > 1) {
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", total);
            ObjectNode map = index.putObject("weight_map");
            weightMap.forEach(map::put);
            AtomicFiles.writeString(out.resolve(TensorStore.INDEX_FILE), pythonJson(index));
        }
        ObjectNode prov = JSON.createObjectNode();
        prov.put("generator", "modeldiff synth");
        prov.put("shape", shape);
        prov.put("config_from", source);
        prov.put("seed", seed);
        prov.put("dtype", dtype.torchName());
        prov.put("num_hidden_layers", c.numLayers);
        if (dequantized) prov.put("quantization", "the release's quantization_config removed: weights are " + dtype.torchName());
        prov.put("values", "matrices U(±sqrt(3)·" + std + "), norms identity ± 0.1, biases U(±" + std + "); random, not trained");
        AtomicFiles.writeString(out.resolve(PROVENANCE), pythonJson(prov));
        Model.open(out); // every tensor the family reads exists with the shape the config implies
        return new Result(out, shards.size(), total, tensors.size());
    }

    /** layer_types (gpt-oss) lists one entry per layer; with fewer layers written, the first {@code layers} of them. */
    private static void truncateLayerTypes(ObjectNode config, int layers) {
        if (!(config.get("layer_types") instanceof com.fasterxml.jackson.databind.node.ArrayNode types) || types.size() <= layers)
            return;
        while (types.size() > layers) types.remove(types.size() - 1);
    }

    /**
     * Parameter names in HF's state-dict order (module registration order) for the Llama-layout families, MoE ones
     * included: Qwen3-MoE's router mlp.gate and per-expert mlp.experts.E.{gate,up,down}_proj (modeling_qwen3_moe.py
     * Qwen3MoeSparseMoeBlock), gpt-oss's router mlp.router (weight and bias), fused experts mlp.experts.gate_up_proj
     * [E, H, 2·ff] / down_proj [E, ff, H] with their biases, and self_attn.sinks [heads] (modeling_gpt_oss.py).
     */
    static List<Tensor> stateDict(ModelConfig c) {
        Family f = c.family;
        if (f.layout != Family.Layout.LLAMA || f.learnedPositions)
            throw new BadInputException("synth writes Llama-layout families only, not " + c.modelType);
        if (c.mla != null) throw new BadInputException("synth does not write multi-head latent attention (" + c.modelType + ")");
        int h = c.hiddenSize, qd = c.qDim(), kvd = c.kvDim(), ff = c.intermediateSize, hd = c.headDim;
        List<Tensor> out = new ArrayList<>();
        out.add(new Tensor("model.embed_tokens.weight", new long[]{c.vocabSize, h}, Kind.MATRIX));
        for (int i = 0; i < c.numLayers; i++) {
            String p = "model.layers." + i + ".";
            linear(out, p + "self_attn.q_proj", qd, h, c.qkvBias);
            linear(out, p + "self_attn.k_proj", kvd, h, c.qkvBias);
            linear(out, p + "self_attn.v_proj", kvd, h, c.qkvBias);
            linear(out, p + "self_attn.o_proj", h, qd, c.oBias);
            if (f.qkNorm) {
                out.add(new Tensor(p + "self_attn.q_norm.weight", new long[]{hd}, Kind.NORM));
                out.add(new Tensor(p + "self_attn.k_norm.weight", new long[]{hd}, Kind.NORM));
            }
            if (f.attentionSinks) out.add(new Tensor(p + "self_attn.sinks", new long[]{c.numHeads}, Kind.BIAS));
            if (c.moe != null && c.moe.sparse(i)) {
                moe(out, p, c);
            } else {
                if (f.mlp == Family.Mlp.GATED) linear(out, p + "mlp.gate_proj", ff, h, c.mlpBias);
                linear(out, p + "mlp.up_proj", ff, h, c.mlpBias);
                linear(out, p + "mlp.down_proj", h, ff, c.mlpBias);
            }
            out.add(new Tensor(p + "input_layernorm.weight", new long[]{h}, Kind.NORM));
            out.add(new Tensor(p + "post_attention_layernorm.weight", new long[]{h}, Kind.NORM));
            if (f.sandwichNorms) {
                out.add(new Tensor(p + "pre_feedforward_layernorm.weight", new long[]{h}, Kind.NORM));
                out.add(new Tensor(p + "post_feedforward_layernorm.weight", new long[]{h}, Kind.NORM));
            }
        }
        out.add(new Tensor("model.norm.weight", new long[]{h}, Kind.NORM));
        if (!c.tieWordEmbeddings) out.add(new Tensor("lm_head.weight", new long[]{c.vocabSize, h}, Kind.MATRIX));
        if (f.norm.centered()) throw new BadInputException("synth does not write LayerNorm biases (" + c.modelType + ")");
        return out;
    }

    /** One routed MLP: gpt-oss's fused layout or the per-expert one (Qwen3-MoE, OLMoE, Mixtral's names). */
    private static void moe(List<Tensor> out, String p, ModelConfig c) {
        Family.ExpertNames n = c.family.moe.names();
        MoeSpec s = c.moe;
        int h = c.hiddenSize, ff = s.expertSize, e = s.numExperts;
        if (s.sharedSize != 0 || s.router == Family.Router.SIGMOID_GROUPED)
            throw new BadInputException("synth does not write shared experts or sigmoid routers (" + c.modelType + ")");
        if (n == Family.GPT_OSS_EXPERTS) {
            String b = p + "mlp.";
            linear(out, b + "router", e, h, true);
            out.add(new Tensor(b + "experts.gate_up_proj", new long[]{e, h, 2L * ff}, Kind.MATRIX));
            out.add(new Tensor(b + "experts.gate_up_proj_bias", new long[]{e, 2L * ff}, Kind.BIAS));
            out.add(new Tensor(b + "experts.down_proj", new long[]{e, ff, h}, Kind.MATRIX));
            out.add(new Tensor(b + "experts.down_proj_bias", new long[]{e, h}, Kind.BIAS));
            return;
        }
        if (n != Family.QWEN_EXPERTS && n != Family.MIXTRAL_EXPERTS)
            throw new BadInputException("synth does not write " + c.modelType + "'s expert layout");
        String b = p + n.block() + ".";
        linear(out, b + n.router(), e, h, false);
        for (int x = 0; x < e; x++) {
            String ex = b + "experts." + x + ".";
            linear(out, ex + n.gate(), ff, h, false);
            linear(out, ex + n.up(), ff, h, false);
            linear(out, ex + n.down(), h, ff, false);
        }
    }

    private static void linear(List<Tensor> out, String name, int o, int in, boolean bias) {
        out.add(new Tensor(name + ".weight", new long[]{o, in}, Kind.MATRIX));
        if (bias) out.add(new Tensor(name + ".bias", new long[]{o}, Kind.BIAS));
    }

    private static SafeTensorsWriter.Values values(Tensor t, long seed, double std, Family f, Parallel par) {
        double center = t.kind == Kind.NORM && !f.norm.unitOffset() ? 1.0 : 0.0;
        double half = switch (t.kind) {
            case MATRIX -> Math.sqrt(3) * std;   // uniform on ±a has standard deviation a / sqrt(3)
            case NORM -> 0.1;
            case BIAS -> std;
        };
        long nameSeed = mix(seed ^ mix(t.name.hashCode() * 0x9E3779B97F4A7C15L));
        return (first, out, n) -> {
            if (first % BLOCK != 0) throw new IllegalStateException("chunks must start on a block");
            int blocks = (n + BLOCK - 1) / BLOCK;
            par.forEach(blocks, b -> {
                SplittableRandom r = new SplittableRandom(mix(nameSeed + first / BLOCK + b));
                int lo = b * BLOCK, hi = Math.min(n, lo + BLOCK);
                for (int i = lo; i < hi; i++) out[i] = center + (2 * r.nextDouble() - 1) * half;
            });
        };
    }

    /** As HF writes its JSON files: json.dumps(obj, indent=2) + newline ("key": value, two-space indents). */
    static String pythonJson(ObjectNode node) {
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter(Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(new DefaultIndenter("  ", "\n")).withArrayIndenter(new DefaultIndenter("  ", "\n"));
        try {
            return JSON.writer(pp).writeValueAsString(node) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** SplitMix64's finalizer: spreads a seed over all 64 bits. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static void prepareDir(Path out, boolean force) {
        try {
            if (Files.exists(out)) {
                if (!Files.isDirectory(out)) throw new BadInputException(out + ": exists and is not a directory");
                try (var s = Files.list(out)) {
                    if (s.findAny().isPresent() && !force)
                        throw new BadInputException(out + ": not empty; pass --force to write into it");
                }
            }
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new BadInputException(out + ": cannot create: " + e.getMessage(), e);
        }
    }

    private static void checkSpace(Path out, long bytes) {
        try {
            long free = Files.getFileStore(out).getUsableSpace();
            if (free < bytes + (64L << 20))
                throw new BadInputException(String.format("%s: the model needs %.2f GB but the disk has %.2f GB free; "
                        + "use --layers to write fewer layers", out, bytes / 1e9, free / 1e9));
        } catch (IOException e) {
            // no usable-space figure: let the write itself fail if it must
        }
    }
}
